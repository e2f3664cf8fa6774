/* The pure encodings of the SVM backend: MSR permission map bits, segment attributes,
 * EVENTINJ and the decoding of exit information.  No hardware access, so the host unit
 * tests (tests/unit/test_svm_vmcb.c) compile this file unchanged. */
#include "arch/x86_64/svm/vmcb.h"

static void msrpm_clear(uint8_t *pm, uint32_t msr, unsigned bits)
{
    uint32_t base;
    if (msr <= 0x1fff)
        base = 0;
    else if (msr >= 0xc0000000 && msr <= 0xc0001fff)
        base = 0x800, msr -= 0xc0000000;
    else if (msr >= 0xc0010000 && msr <= 0xc0011fff)
        base = 0x1000, msr -= 0xc0010000;
    else
        return;
    pm[base + msr / 4] &= (uint8_t)~(bits << ((msr % 4) * 2));
}

void svm_msrpm_allow(uint8_t *pm, uint32_t msr)
{
    msrpm_clear(pm, msr, 3);
}

void svm_msrpm_allow_read(uint8_t *pm, uint32_t msr)
{
    msrpm_clear(pm, msr, 1);
}

uint32_t svm_ar_from_attrib(uint16_t a)
{
    uint32_t ar = (a & 0xffu) | ((uint32_t)(a & 0xf00u) << 4);
    if (!(a & 0x80))
        ar |= HVM_AR_UNUSABLE;
    return ar;
}

uint16_t svm_attrib_from_ar(uint32_t ar)
{
    uint16_t a = (uint16_t)((ar & 0xffu) | ((ar >> 4) & 0xf00u));
    return (ar & HVM_AR_UNUSABLE) ? (uint16_t)(a & ~0x80u) : a;
}

uint64_t svm_event_inj(const struct hvm_event *e)
{
    /* INT3/INTO are exceptions to EVENTINJ, which takes the return address from the
     * VMCB's RIP: the backend moves it past the instruction first (APM §15.20). */
    static const uint32_t type[] = {
        [HVM_EVENT_EXTINT] = SVM_EVT_TYPE_INTR, [HVM_EVENT_NMI] = SVM_EVT_TYPE_NMI,
        [HVM_EVENT_EXCEPTION] = SVM_EVT_TYPE_EXCEPT, [HVM_EVENT_SOFTINT] = SVM_EVT_TYPE_SOFTINT,
        [HVM_EVENT_SOFT_EXCEPTION] = SVM_EVT_TYPE_EXCEPT, [HVM_EVENT_PRIV_SOFT_EXCEPTION] = SVM_EVT_TYPE_EXCEPT,
    };
    uint64_t inj = SVM_EVT_VALID | type[e->type] << SVM_EVT_TYPE_SHIFT |
                   (e->type == HVM_EVENT_NMI ? 2u : e->vector);
    if (e->type == HVM_EVENT_EXCEPTION && e->has_error)
        inj |= SVM_EVT_EV | (uint64_t)e->error_code << 32;
    return inj;
}

bool svm_interrupted_event(uint64_t exitintinfo, uint64_t exitcode, struct hvm_event *e)
{
    if (!(exitintinfo & SVM_EVT_VALID) || exitcode == SVM_EXIT_SHUTDOWN)
        return false;
    uint32_t type = (uint32_t)(exitintinfo & SVM_EVT_TYPE_MASK) >> SVM_EVT_TYPE_SHIFT;
    uint8_t vector = (uint8_t)(exitintinfo & SVM_EVT_VECTOR_MASK);
    *e = (struct hvm_event){ .vector = vector, .has_error = (exitintinfo & SVM_EVT_EV) != 0,
                             .error_code = (uint32_t)(exitintinfo >> 32) };
    switch (type) {
    case SVM_EVT_TYPE_INTR:    e->type = HVM_EVENT_EXTINT; break;
    case SVM_EVT_TYPE_NMI:     e->type = HVM_EVENT_NMI; e->vector = 2; break;
    case SVM_EVT_TYPE_SOFTINT: e->type = HVM_EVENT_SOFTINT; e->has_error = false; break;
    case SVM_EVT_TYPE_EXCEPT:
        e->type = vector == 3 || vector == 4 ? HVM_EVENT_SOFT_EXCEPTION : HVM_EVENT_EXCEPTION;
        break;
    default:
        return false;   /* reserved types: nothing the guest could have raised */
    }
    return true;
}

void svm_decode_ioio(uint64_t info1, uint64_t info2, uint64_t rip, struct hvm_exit *x)
{
    x->reason = HVM_EXIT_IO;
    x->io.in = info1 & SVM_IOIO_IN;
    x->io.string = (info1 & SVM_IOIO_STR) != 0;
    x->io.rep = (info1 & SVM_IOIO_REP) != 0;
    x->io.size = (info1 & SVM_IOIO_SZ32) ? 4 : (info1 & SVM_IOIO_SZ16) ? 2 : 1;
    x->io.port = (uint16_t)(info1 >> 16);
    /* EXITINFO2 is the next RIP even without nRIP-save (§15.10.2). */
    if (info2 > rip && info2 - rip <= 15)
        x->insn_len = (uint8_t)(info2 - rip);
}

void svm_decode_npf(uint64_t info1, uint64_t info2, struct hvm_exit *x)
{
    x->reason = HVM_EXIT_NPF;
    x->npf.gpa = info2;
    x->npf.write = (info1 & SVM_NPF_WRITE) != 0;
    x->npf.fetch = (info1 & SVM_NPF_FETCH) != 0;
    x->npf.read = !x->npf.write && !x->npf.fetch;
    x->npf.gla_valid = false;
}
