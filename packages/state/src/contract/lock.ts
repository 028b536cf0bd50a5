// The volume's writer lock: the one kernel-held lock that makes a process the PE's writer. Shared by the
// state library (which takes it) and reseat's side and tests (which look for it from outside).
//
// What it is: `.reseat/writer.lock` in the state volume, a small SQLite database that the writer opens with
// `locking_mode=EXCLUSIVE` and keeps in an EXCLUSIVE lock for its whole life. On Linux that is a POSIX
// (fcntl) write lock over SQLite's lock bytes, PENDING through the SHARED range: bytes 1073741824–1073742335
// of the file. The kernel releases it when the holder exits or is killed (kill -9 included), never while it
// lives — a stopped (SIGSTOP) or frozen process keeps it. From the host it is the `/proc/locks` line
// `POSIX ADVISORY WRITE <holder pid> <dev>:<inode> 1073741824 1073742335` for the file's inode.
//
// Who holds it: only a process whose generation is the newest (the meta record) may open the state
// writable, and only while it holds this lock; a parked standby waits for it and has opened nothing else.
import { RECORD_DIR } from "./records";

/** The lock file, relative to the state volume's root (never replaced or removed: the lock lives on its inode). */
export const WRITER_LOCK_FILE = `${RECORD_DIR}/writer.lock`;

/** The byte range the holder's POSIX write lock covers (SQLite's PENDING byte through its SHARED range), inclusive. */
export const WRITER_LOCK_RANGE = { start: 0x40000000, end: 0x40000000 + 2 + 510 - 1 } as const;

/**
 * Where a parked standby of `generation` reports itself (the status record's encoding, phase "parked"),
 * relative to the volume's root: its own file, so it never overwrites the serving writer's status record.
 * Removed by the standby once it serves (the status record then names its generation, phase "serving").
 */
export function standbyStatusFile(generation: number): string {
  return `${RECORD_DIR}/standby-g${generation}.json`;
}
