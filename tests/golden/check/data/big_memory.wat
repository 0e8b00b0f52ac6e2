;; Asks for 64 pages (4 MiB) of memory from the start.
(module
  (import "env" "memory" (memory 64 64))
  (export "memory" (memory 0))
  (func (export "_start")))
