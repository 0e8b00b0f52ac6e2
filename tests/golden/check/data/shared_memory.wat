;; Built for wasm32-wasip1-threads: a shared imported memory.
(module
  (import "env" "memory" (memory 2 64 shared))
  (export "memory" (memory 0))
  (func (export "_start")))
