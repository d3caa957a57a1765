// Counts heap allocations between start and stop, for tests that assert a code path
// allocates nothing. Linked only into the test executable.
#ifndef DECISIONFLOW_MALLOC_COUNTER_H
#define DECISIONFLOW_MALLOC_COUNTER_H

/// Starts a session on the calling thread: from now on its allocations, and those of every
/// thread attached to the session, are counted.
void malloc_counter_start(void);
/// Ends the calling thread's session and returns how many allocations it counted. Attached
/// threads stop counting too (detach them before the session's thread starts another).
long malloc_counter_stop(void);
/// The session the calling thread counts into, or NULL.
void *malloc_counter_session(void);
/// Makes the calling thread count into `session` (from malloc_counter_session); NULL detaches.
void malloc_counter_attach(void *session);

#endif
