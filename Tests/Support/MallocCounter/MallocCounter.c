// Replaces the allocation entry points of the test executable with versions that count calls
// made on threads that count into a session, then forward to glibc's own allocator. Because
// the executable exports these symbols, calls from shared libraries (the Swift runtime's
// swift_allocObject among them) resolve here too.
//
// Counting is per session, not global: Swift Testing runs tests in parallel, and a global
// count would see other tests' allocations. A session belongs to the thread that starts it;
// other threads (a model's workers, which run half of every parallel step) join it with
// malloc_counter_attach, so their allocations are not invisible.
#include <stdatomic.h>
#include <stddef.h>
#include "MallocCounter.h"

extern void *__libc_malloc(size_t size);
extern void __libc_free(void *pointer);
extern void *__libc_calloc(size_t count, size_t size);
extern void *__libc_realloc(void *pointer, size_t size);
extern void *__libc_memalign(size_t alignment, size_t size);

struct session {
    atomic_long allocations;
    atomic_int active;
};

// The session a thread starts (it lives as long as the thread), and the one it counts into.
static __thread struct session own;
static __thread struct session *current;

static inline void count(void) {
    struct session *session = current;
    if (session && atomic_load_explicit(&session->active, memory_order_relaxed))
        atomic_fetch_add_explicit(&session->allocations, 1, memory_order_relaxed);
}

void malloc_counter_start(void) {
    atomic_store(&own.allocations, 0);
    atomic_store(&own.active, 1);
    current = &own;
}

long malloc_counter_stop(void) {
    atomic_store(&own.active, 0);
    current = NULL;
    return atomic_load(&own.allocations);
}

void *malloc_counter_session(void) { return current; }

void malloc_counter_attach(void *session) { current = session; }

void *malloc(size_t size) {
    count();
    return __libc_malloc(size);
}

void free(void *pointer) { __libc_free(pointer); }

void *calloc(size_t count_, size_t size) {
    count();
    return __libc_calloc(count_, size);
}

void *realloc(void *pointer, size_t size) {
    count();
    return __libc_realloc(pointer, size);
}

void *memalign(size_t alignment, size_t size) {
    count();
    return __libc_memalign(alignment, size);
}

void *aligned_alloc(size_t alignment, size_t size) {
    count();
    return __libc_memalign(alignment, size);
}

int posix_memalign(void **result, size_t alignment, size_t size) {
    count();
    void *pointer = __libc_memalign(alignment, size);
    if (!pointer) return 12;  // ENOMEM
    *result = pointer;
    return 0;
}
