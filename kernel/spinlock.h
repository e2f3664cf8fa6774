/* Ticket spinlocks: fair, so no CPU starves another out of the console or allocator. */
#ifndef PLINTH_KERNEL_SPINLOCK_H
#define PLINTH_KERNEL_SPINLOCK_H

#include <stdint.h>
#include <stdbool.h>

struct spinlock {
    volatile uint32_t next;
    volatile uint32_t owner;
};

#define SPINLOCK_INIT { 0, 0 }

static inline void spin_lock(struct spinlock *l)
{
    uint32_t me = __atomic_fetch_add(&l->next, 1, __ATOMIC_RELAXED);
    while (__atomic_load_n(&l->owner, __ATOMIC_ACQUIRE) != me)
        __asm__ volatile("pause");
}

static inline bool spin_trylock(struct spinlock *l)
{
    uint32_t owner = __atomic_load_n(&l->owner, __ATOMIC_RELAXED);
    uint32_t expect = owner;
    return __atomic_compare_exchange_n(&l->next, &expect, owner + 1, false,
                                       __ATOMIC_ACQUIRE, __ATOMIC_RELAXED);
}

static inline void spin_unlock(struct spinlock *l)
{
    __atomic_store_n(&l->owner, l->owner + 1, __ATOMIC_RELEASE);
}

/* For locks also taken from interrupt handlers: keeps interrupts off while held. */
#ifndef PLINTH_HOST_TEST
static inline uint64_t spin_lock_irqsave(struct spinlock *l)
{
    uint64_t flags;
    __asm__ volatile("pushfq; popq %0; cli" : "=r"(flags) :: "memory");
    spin_lock(l);
    return flags;
}

static inline void spin_unlock_irqrestore(struct spinlock *l, uint64_t flags)
{
    spin_unlock(l);
    if (flags & (1u << 9))
        __asm__ volatile("sti" ::: "memory");
}

/* As spin_lock_irqsave, giving up after `tries` attempts: SPIN_TRY_FAILED, with
 * interrupts as they were. */
#define SPIN_TRY_FAILED (~0ull)
static inline uint64_t spin_lock_irqsave_try(struct spinlock *l, unsigned long tries)
{
    uint64_t flags;
    __asm__ volatile("pushfq; popq %0; cli" : "=r"(flags) :: "memory");
    for (unsigned long i = 0; i < tries; i++) {
        if (spin_trylock(l))
            return flags;
        __asm__ volatile("pause");
    }
    if (flags & (1u << 9))
        __asm__ volatile("sti" ::: "memory");
    return SPIN_TRY_FAILED;
}
#else
/* Host unit tests run in user mode, where cli/sti fault: the lock alone. */
static inline uint64_t spin_lock_irqsave(struct spinlock *l)
{
    spin_lock(l);
    return 0;
}

static inline void spin_unlock_irqrestore(struct spinlock *l, uint64_t flags)
{
    (void)flags;
    spin_unlock(l);
}

#define SPIN_TRY_FAILED (~0ull)
static inline uint64_t spin_lock_irqsave_try(struct spinlock *l, unsigned long tries)
{
    for (unsigned long i = 0; i < tries; i++)
        if (spin_trylock(l))
            return 0;
    return SPIN_TRY_FAILED;
}
#endif

#endif
