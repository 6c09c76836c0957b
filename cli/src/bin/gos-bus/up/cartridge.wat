;; The Pixel Code Executor cartridge `gos-bus up` runs among its samples (written out as
;; wasm-brick.rts.png): it logs a line, asks for its own texture as a window at output pixel
;; (1120, 40) (right of the producer's windows) and returns 6 * 7. The API's functions are imported from "gos"
;; (`gos-dna-wasm api` lists their signatures).
(module
  (import "gos" "log" (func $log (param i32 i32)))
  (import "gos" "spawn_brick" (func $spawn_brick (param i32 i32 i64)))
  (memory (export "memory") 1)
  (data (i32.const 0) "cartridge online")
  (func (export "run") (result i32)
    (call $log (i32.const 0) (i32.const 16))
    (call $spawn_brick (i32.const 1120) (i32.const 40) (i64.const 0))
    (i32.mul (i32.const 6) (i32.const 7))))
