// Sessions: types and statuses (types.ts), the lifecycle as a pure state
// machine (machine.ts), the registry interface and its in-memory store
// (registry.ts), events (events.ts), audit lines (audit.ts); the executor
// that runs sessions in Chromium (executor.ts, with what it holds per session
// in entry.ts, its page and module watch in page-watch.ts and failure
// screenshots in diagnostics.ts), and the public API over it (manager.ts).
export * from './types.ts'
export { transition, initialState, backoffMs, nextDeadline, DEFAULT_MACHINE, type MachineConfig, type MachineEvent, type Effect } from './machine.ts'
export { createMemoryRegistry, createMemoryStore, capacityError, type SessionRegistry, type FleetRegistry, type MemoryStore, type Caps, type SameSessionQuery } from './registry.ts'
export { auditListener, keyDigest } from './audit.ts'
export { createSessionManager, type SessionManager, type SessionManagerOptions, type StartResult } from './manager.ts'
