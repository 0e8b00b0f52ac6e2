;; Imports a function table and a global, as a module linked with --import-table or as a
;; shared library: shoal provides neither.
(module
  (import "env" "memory" (memory 2 64))
  (import "env" "__indirect_function_table" (table 1 funcref))
  (import "env" "__stack_pointer" (global (mut i32)))
  (export "memory" (memory 0))
  (func (export "_start")))
