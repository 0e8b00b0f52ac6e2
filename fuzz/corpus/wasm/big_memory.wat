(module
  (memory (export "memory") 65536)
  (data (i32.const 0) "x")
  (start $s)
  (func $s)
  (func (export "_start")))
