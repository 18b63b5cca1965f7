// The binomial band of the ratio detector (anomaly-detectors.ts): which counts out of n are
// plausible under a rate p, from the exact binomial tails (small counts of rare events are skewed,
// a normal band would flag noise).

// Lanczos approximation of ln Γ(x), x > 0 (g = 7, n = 9).
const LANCZOS = [
  0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
  12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
]
function lnGamma(x: number): number {
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - lnGamma(1 - x)
  const y = x - 1
  let a = LANCZOS[0]!
  const t = y + 7.5
  for (let i = 1; i < 9; i++) a += LANCZOS[i]! / (y + i)
  return 0.5 * Math.log(2 * Math.PI) + (y + 0.5) * Math.log(t) - t + Math.log(a)
}

function binomialPmf(i: number, n: number, p: number): number {
  return Math.exp(
    lnGamma(n + 1) - lnGamma(i + 1) - lnGamma(n - i + 1) + i * Math.log(p) + (n - i) * Math.log1p(-p),
  )
}

/**
 * [lo, hi]: the counts out of n that are not in a tail of probability < alpha under Binomial(n, p):
 * P(X < lo) < alpha and P(X > hi) < alpha, walking out from the mean.
 */
export function binomialBand(n: number, p: number, alpha: number): [number, number] {
  const mean = Math.floor(n * p)
  let hi = n
  let tail = 0
  for (let c = n; c > mean; c--) {
    tail += binomialPmf(c, n, p)
    if (tail >= alpha) {
      hi = c
      break
    }
    hi = c - 1
  }
  let lo = 0
  tail = 0
  for (let c = 0; c < mean; c++) {
    tail += binomialPmf(c, n, p)
    if (tail >= alpha) {
      lo = c
      break
    }
    lo = c + 1
  }
  return [lo, hi]
}
