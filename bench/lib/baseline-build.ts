import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { REPO_ROOT } from './results.js'

/**
 * The compiled tree (dist/) of an earlier commit, so a bench can run the previous code beside the
 * current one in the same run. The commit is extracted with `git archive` (no worktree, nothing
 * in the repository changes) into <tmpdir>/adgate-bench-builds/<commit>, given this checkout's
 * node_modules (so the same libraries and native addon), and compiled with its tsc once; later
 * runs reuse it. Returns the dist directory.
 */
export function buildAt(commit: string): string {
  const git = (...args: string[]) =>
    execFileSync('git', args, { cwd: REPO_ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim()
  const sha = git('rev-parse', '--verify', `${commit}^{commit}`)
  const dir = join(tmpdir(), 'adgate-bench-builds', sha)
  const dist = join(dir, 'dist')
  const built = join(dist, '.bench-built')
  if (existsSync(built)) return dist
  rmSync(dir, { recursive: true, force: true })
  mkdirSync(dir, { recursive: true })
  execFileSync('sh', ['-c', 'git archive --format=tar "$0" | tar -x -C "$1"', sha, dir], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'ignore', 'inherit'],
  })
  symlinkSync(join(REPO_ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir')
  execFileSync(process.execPath, [join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', '.'], {
    cwd: dir,
    stdio: ['ignore', 'inherit', 'inherit'],
  })
  writeFileSync(built, `${sha}\n`)
  return dist
}
