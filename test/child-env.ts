// How the tests start the service's own programs (the service, the CLI).

/**
 * A command of ours (the service, the CLI) as users run it: without the
 * loader that tap's processinfo adds to every child's NODE_OPTIONS to record
 * the files it loads (~0.7 CPU-s a service process, and not what users run).
 * Under `npm run coverage` the loader stays: it collects the children's
 * coverage.
 */
export function asUsersRun (cmd: string, args: string[]): [string, string[]] {
  if (process.env._TAPJS_PROCESSINFO_COVERAGE_ === '1') return [cmd, args]
  return ['env', ['-u', 'NODE_OPTIONS', cmd, ...args]]
}

/** asUsersRun for a shell command line (script(1)'s). */
export function asUsersRunLine (line: string): string {
  const [cmd, args] = asUsersRun(line, [])
  return [cmd, ...args].join(' ')
}
