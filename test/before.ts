// tap's `before` (.taprc): runs test/prepare.ts (the build, Chromium
// unpacked) once before the test files, without tap's loader. tap runs this
// file under its coverage loader, which its processinfo also puts into
// every child it spawns: tsc under V8 coverage took ~6.5 CPU-s instead of
// ~3.8, before any test file started, and the report of this file's
// coverage printed "ERROR: incomplete coverage" at the end of every run.
import { execFileSync } from 'node:child_process'

execFileSync('env', ['-u', 'NODE_OPTIONS', process.execPath, new URL('prepare.ts', import.meta.url).pathname], { stdio: 'inherit' })
