"""iOS budgets with and without Apple's increased-memory-limit entitlement: a model that fits only
with the entitlement says so (in the fit results' memory notes, so tables and JSON both carry it)."""

from __future__ import annotations

from slmplan.errors import BadInputError
from slmplan.schema.device import DeviceProfile
from slmplan.schema.estimate import FitResult


def entitled_device(device: DeviceProfile) -> DeviceProfile:
    ent = device.with_entitlement()
    if ent is None:
        raise BadInputError(f"device '{device.id}' has no budget with the increased-memory-limit entitlement",
                            "--ios-entitlement applies to iOS/iPadOS profiles with memory_budget_gb_entitled")
    return ent


def annotate(results: list[FitResult], other_budget: list[FitResult], device: DeviceProfile, used_entitlement: bool) -> list[FitResult]:
    """Add a note to each result whose verdict differs under the other budget (other_budget: the same fit there)."""
    other = {(r.model, r.quant): r for r in other_budget}
    a, b = device.memory_budget_gb, device.memory_budget_gb_entitled
    out = []
    for r in results:
        o = other.get((r.model, r.quant))
        if o is None or o.verdict == r.verdict:
            out.append(r)
            continue
        without, with_ = (o, r) if used_entitlement else (r, o)
        if without.verdict == "does-not-fit":
            note = (f"{r.model} {r.quant}: fits only with Apple's increased-memory-limit entitlement "
                    f"({b:g} GB budget: {with_.verdict}; without it, {a:g} GB: does-not-fit)")
        else:
            note = (f"{r.model} {r.quant}: {without.verdict} without the increased-memory-limit entitlement "
                    f"({a:g} GB), {with_.verdict} with it ({b:g} GB)")
        if not used_entitlement:
            note += "; see --ios-entitlement"
        out.append(r.model_copy(update={"memory": r.memory.model_copy(update={"notes": [*r.memory.notes, note]})}))
    return out
