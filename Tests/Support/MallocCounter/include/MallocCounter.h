// Counts heap allocations made by the calling thread between start and stop, for tests that
// assert a code path allocates nothing. Linked only into the test executable.
#ifndef DECISIONFLOW_MALLOC_COUNTER_H
#define DECISIONFLOW_MALLOC_COUNTER_H

void malloc_counter_start(void);
long malloc_counter_stop(void);

#endif
