;; Linked with --no-entry: nothing to run.
(module
  (import "env" "memory" (memory 2 64))
  (export "memory" (memory 0))
  (func (export "helper") (result i32) (i32.const 1)))
