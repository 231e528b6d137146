// The console's only script: keyboard moves in the heat map, and the
// generate and clean-up buttons, which call the REST admin endpoints with
// the session's CSRF token. It runs under the console's
// Content-Security-Policy (script-src 'self': no inline code).
'use strict';

document.addEventListener('DOMContentLoaded', () => {
  heatMap(document.getElementById('heatmap'));
  const body = document.body;
  for (const form of document.querySelectorAll('form[data-action]')) {
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      maintain(form, body.dataset.adminApi || '/api/admin/time-slots', body.dataset.csrf || '');
    });
  }
});

// heatMap lets the keyboard walk the cells: one Tab stop for the whole
// map (a roving tabindex), arrow keys, Home and End within a row; the
// focused cell shows its number, and its sentence appears below the map.
function heatMap(table) {
  if (!table) return;
  const rows = Array.from(table.tBodies[0].rows, (tr) => Array.from(tr.querySelectorAll('td')));
  const detail = document.getElementById('heat-detail');
  table.addEventListener('focusin', (ev) => {
    const cell = ev.target.closest('td');
    if (cell && detail) detail.textContent = cell.getAttribute('aria-label');
  });
  table.addEventListener('keydown', (ev) => {
    const cell = ev.target.closest('td');
    if (!cell) return;
    const r = rows.findIndex((row) => row.includes(cell));
    const c = rows[r].indexOf(cell);
    const moves = {
      ArrowRight: [r, c + 1], ArrowLeft: [r, c - 1], ArrowDown: [r + 1, c], ArrowUp: [r - 1, c],
      Home: [r, 0], End: [r, rows[r].length - 1],
    };
    const to = moves[ev.key];
    if (!to) return;
    ev.preventDefault();
    const next = rows[to[0]] && rows[to[0]][to[1]];
    if (!next) return;
    cell.tabIndex = -1;
    next.tabIndex = 0;
    next.focus();
  });
}

// maintain runs a generation or a cleanup and says what it did.
async function maintain(form, api, csrf) {
  const out = document.getElementById('result');
  const button = form.querySelector('button');
  const generate = form.dataset.action === 'generate';
  const field = form.querySelector('input');
  const n = Number(field.value);
  let url = api;
  const init = { method: generate ? 'POST' : 'DELETE', credentials: 'same-origin', headers: { 'X-CSRF-Token': csrf } };
  if (generate) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify({ daysAhead: n });
  } else {
    url += '?daysOld=' + encodeURIComponent(field.value);
  }
  button.disabled = true;
  out.className = 'result';
  out.textContent = generate ? 'Generating…' : 'Cleaning up…';
  try {
    const res = await fetch(url, init);
    const body = await res.json().catch(() => ({}));
    if (!res.ok) {
      const e = body.error || {};
      throw new Error(e.message ? sentence(e.message) : 'The server answered ' + res.status + '.');
    }
    out.textContent = generate
      ? `Created ${body.created} slots and skipped ${body.skipped} that existed, for ${body.providers} providers over ${body.days} days, in ${body.durationMs} ms. Reload the page to redraw the map.`
      : `Deleted ${body.deleted} slots in ${body.durationMs} ms. Reload the page to redraw the map.`;
  } catch (err) {
    out.className = 'result error';
    out.textContent = err instanceof TypeError ? 'The server could not be reached; check your connection and try again.' : err.message;
  } finally {
    button.disabled = false;
  }
}

function sentence(s) {
  s = s.charAt(0).toUpperCase() + s.slice(1);
  return s.endsWith('.') ? s : s + '.';
}
