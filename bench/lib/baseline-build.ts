import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { RunOptions } from './module.js'
import { REPO_ROOT } from './results.js'

/** The dist/ directory this module runs from: this build's. */
const THIS_BUILD = join(dirname(fileURLToPath(import.meta.url)), '..', '..')

/**
 * buildAt(commit), except in a --quick run, where this build stands in for the commit: compiling
 * an old commit costs more CPU than the whole smoke run, which checks the bench, not the figures.
 */
export function baselineBuild(commit: string, { quick }: RunOptions): string {
  if (!quick) return buildAt(commit)
  process.stdout.write(`  --quick: this build stands in for ${commit}\n`)
  return THIS_BUILD
}

/**
 * The compiled tree (dist/) of an earlier commit, so a bench can run the previous code beside the
 * current one in the same run. The commit is extracted with `git archive` (no worktree, nothing
 * in the repository changes) into <tmpdir>/adgate-bench-builds/<commit> and compiled with this
 * checkout's tsc once; later runs reuse it. Its node_modules is this checkout's packages (so both
 * sides run the same libraries and native addon) plus, installed once at the commit's locked
 * versions, the dependencies it declares that this checkout no longer has (e.g. kafkajs for the
 * consume bench's baseline). Returns the dist directory.
 */
export function buildAt(commit: string): string {
  const git = (...args: string[]) =>
    execFileSync('git', args, { cwd: REPO_ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim()
  const sha = git('rev-parse', '--verify', `${commit}^{commit}`)
  const dir = join(tmpdir(), 'adgate-bench-builds', sha)
  const dist = join(dir, 'dist')
  const built = join(dist, '.bench-built')
  if (!existsSync(built)) {
    rmSync(dir, { recursive: true, force: true })
    mkdirSync(dir, { recursive: true })
    execFileSync('sh', ['-c', 'git archive --format=tar "$0" | tar -x -C "$1"', sha, dir], {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'ignore', 'inherit'],
    })
  }
  // Laid again on every call: the checkout whose packages it links to may be another one by now.
  linkModules(dir)
  if (!existsSync(built)) {
    execFileSync(process.execPath, [join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', '.'], {
      cwd: dir,
      stdio: ['ignore', 'inherit', 'inherit'],
    })
    writeFileSync(built, `${sha}\n`)
  }
  return dist
}

/** <dir>/node_modules: a link to each of this checkout's packages, then the commit's missing ones. */
function linkModules(dir: string): void {
  const modules = join(dir, 'node_modules')
  rmSync(modules, { recursive: true, force: true })
  mkdirSync(modules)
  const ours = join(REPO_ROOT, 'node_modules')
  for (const name of readdirSync(ours)) symlinkSync(join(ours, name), join(modules, name))
  const extra = join(dir, '.extra-modules')
  for (const name of installMissing(dir, extra)) {
    const scope = name.startsWith('@') ? name.split('/')[0]! : undefined
    if (scope !== undefined && !existsSync(join(modules, scope))) mkdirSync(join(modules, scope))
    rmSync(join(modules, name), { recursive: true, force: true })
    symlinkSync(join(extra, 'node_modules', name), join(modules, name))
  }
}

/**
 * Installs into `extra` (once) the dependencies the commit's package.json declares that this
 * checkout's node_modules lacks, each at the version the commit's package-lock.json pinned.
 */
function installMissing(dir: string, extra: string): string[] {
  const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
    dependencies?: Record<string, string>
    devDependencies?: Record<string, string>
    allowScripts?: Record<string, boolean>
  }
  const lock = JSON.parse(readFileSync(join(dir, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, { version?: string }>
  }
  const declared = Object.keys({ ...manifest.dependencies, ...manifest.devDependencies })
  const missing = declared.filter((name) => !existsSync(join(REPO_ROOT, 'node_modules', name)))
  const absent = missing.filter((name) => !existsSync(join(extra, 'node_modules', name)))
  if (absent.length > 0) {
    mkdirSync(extra, { recursive: true })
    writeFileSync(
      join(extra, 'package.json'),
      JSON.stringify({ private: true, allowScripts: manifest.allowScripts ?? {} }),
    )
    const specs = absent.map((name) => {
      const version = lock.packages[`node_modules/${name}`]?.version
      return version === undefined ? name : `${name}@${version}`
    })
    process.stderr.write(`baseline build: installing ${specs.join(' ')} (not in this checkout)\n`)
    execFileSync('npm', ['install', '--no-audit', '--no-fund', '--no-package-lock', ...specs], {
      cwd: extra,
      env: { ...process.env, npm_config_nodedir: process.env.npm_config_nodedir ?? '/usr' },
      stdio: ['ignore', 'ignore', 'inherit'],
    })
  }
  return missing
}
