package graph

// The generated executable schema (*.generated.go, model/models_gen.go) is
// committed; regenerate it after editing a *.graphqls file or gqlgen.yml.
// gqlgen finds ../gqlgen.yml by itself and runs from the module root.
//go:generate go tool gqlgen generate
