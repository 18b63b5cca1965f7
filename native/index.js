// The addon is optional: when it was not built (install scripts not approved, no compiler), this
// exports null and adgate uses its JS decoder, saying so once in its log.
let binding = null
let loadError = null
try {
  // LEAKCHECK_ADDON: scripts/native-leakcheck.mjs loads a build valgrind can run (no AVX-512).
  binding = require(process.env.LEAKCHECK_ADDON || './build/Release/adgate_native.node')
} catch (err) {
  loadError = err
}
module.exports = { binding, loadError }
