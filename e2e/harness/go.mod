module github.com/wasmgate/wasmgate/e2e/harness

go 1.26.0
