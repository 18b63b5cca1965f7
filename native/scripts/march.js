// The -march for the addon: x86-64-v3 (AVX2, every x86 server CPU since 2013) when the build
// machine has AVX2, else the x86-64 baseline. Not -march=native: an image built on an AVX-512
// machine must still run on AVX2-only hosts (an unsupported instruction kills the thread).
const { readFileSync } = require('node:fs')

let flag = ''
if (process.arch === 'x64') {
  let avx2 = false
  try {
    avx2 = / avx2( |$)/m.test(readFileSync('/proc/cpuinfo', 'utf8'))
  } catch {}
  flag = avx2 ? '-march=x86-64-v3' : '-march=x86-64'
}
process.stdout.write(flag)
