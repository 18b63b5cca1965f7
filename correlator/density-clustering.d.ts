// Types for the parts of density-clustering (untyped on npm) that correlator/anomaly.ts uses.
declare module 'density-clustering' {
  export class DBSCAN {
    run(dataset: number[][], epsilon: number, minPts: number): number[][]
  }
}
