/** Token bucket: `rate` tokens a second, bursts up to `capacity`. One per API key. */
export class TokenBucket {
  private tokens: number
  private last: number

  constructor(
    private readonly rate: number,
    private readonly capacity: number,
    now = Date.now(),
  ) {
    this.tokens = capacity
    this.last = now
  }

  /** Takes a token if there is one; otherwise returns the seconds until there will be (for Retry-After). */
  take(now = Date.now()): 0 | number {
    this.tokens = Math.min(this.capacity, this.tokens + ((now - this.last) / 1000) * this.rate)
    this.last = now
    if (this.tokens >= 1) {
      this.tokens -= 1
      return 0
    }
    return Math.max(1, Math.ceil((1 - this.tokens) / this.rate))
  }
}
