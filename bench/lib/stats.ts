// Order statistics for latency samples. Medians and nearest-rank percentiles, so a reported
// value is always one that was actually observed.

export interface Summary {
  n: number
  median: number
  p99: number
  min: number
  max: number
}

export function percentile (samples: readonly number[], p: number): number {
  if (samples.length === 0) return Number.NaN
  const sorted = [...samples].sort((a, b) => a - b)
  const rank = Math.ceil((p / 100) * sorted.length)
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]
}

export function median (samples: readonly number[]): number {
  return percentile(samples, 50)
}

export function summarize (samples: readonly number[]): Summary {
  return {
    n: samples.length,
    median: round(median(samples)),
    p99: round(percentile(samples, 99)),
    min: round(Math.min(...samples)),
    max: round(Math.max(...samples))
  }
}

/** Rounds to `digits` decimals; keeps results.json readable. */
export function round (x: number, digits = 2): number {
  const f = 10 ** digits
  return Math.round(x * f) / f
}

/** a / b rounded, or null when either side is missing. */
export function ratio (a: number, b: number): number | null {
  if (!Number.isFinite(a) || !Number.isFinite(b) || b === 0) return null
  return round(a / b, 3)
}

export function nowMs (): number {
  return Number(process.hrtime.bigint()) / 1e6
}
