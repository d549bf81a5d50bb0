"""Model: what names the Pokémon, how often it is right, what "not sure" and "not a Pokémon"
mean, what it mixes up, what users say of its answers and how fast it answers, in a fan's words.

Every figure is one the API serves (``GET /v1/model``, ``/v1/monitoring/feedback`` and
``/metrics``); a sentence whose figure the API lacks is left out. The exact figures, under
their raw names, are folded away below.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from pokedex.core.schemas import ConfusedPair, FeedbackAccuracy, ModelInfo, OpenSetInfo
from pokedex.ui import agreement, session
from pokedex.ui.api import ApiError
from pokedex.ui.cards import SURE, browse_link
from pokedex.ui.latency import Latency, route_latency

MIX_UPS_SHOWN = 5
# what `pokedex evaluate` generates to measure the refusals (pokedex.data.unknowns.KINDS)
_NON_POKEMON = "noise, shapes, gradients, textures, landscapes, text and app screenshots"


def render() -> None:
    """The page."""
    st.title("Model", anchor=False)
    client = session.api()
    info = session.model_info(client)
    size = info.input_size
    st.markdown(
        f"The Pokédex names **{info.num_classes:,} species** with a neural network that learned "
        f"from pictures of the games: **{info.name}**, version {info.version}. It looks at each "
        f"picture shrunk to {size}×{size} pixels, so very small details escape it."
    )
    _accuracy(info.metrics)
    _refusals(info.open_set)
    if info.confused_pairs:
        _mix_ups(info.confused_pairs)
    feedback = agreement.section()
    latency = _speed()
    _exact_figures(info, latency, feedback)
    st.caption(f"For developers: the [API documentation]({session.settings().docs_url}).")


def _accuracy(metrics: dict[str, float]) -> None:
    """Top-1 on game pictures and on real photos, with the top-5 beside each."""
    cards = []
    if "test/acc_top1" in metrics:
        where = "game sprites and artwork it never saw while learning"
        cards.append(
            ("game pictures", where, metrics["test/acc_top1"], metrics.get("test/acc_top5"))
        )
    if "photos/acc_top1" in metrics:
        count = f"{metrics['photos/n']:,.0f} " if metrics.get("photos/n") else ""
        where = f"{count}real photos, toys and drawings of Pokémon, none used for learning"
        cards.append(
            ("real photos", where, metrics["photos/acc_top1"], metrics.get("photos/acc_top5"))
        )
    if not cards:
        return
    st.subheader("How often it is right", anchor=False)
    for column, (label, where, top1, top5) in zip(st.columns(2), cards, strict=False):
        column.metric(f"Right on {label}", f"{top1:.0%}")
        among = (
            f"; the right one is among its first five guesses {top5:.0%} of the time"
            if top5 is not None
            else ""
        )
        column.caption(f"Right first time on {where}{among}.")
    if len(cards) == 2:
        st.caption(
            "It learned from game pictures: real photos, with their backgrounds, light and "
            "angles, are harder for it."
        )


def _refusals(rule: OpenSetInfo | None) -> None:
    """What the two cautious answers mean, and how often the refusal is right."""
    st.subheader("“Not sure” and “not a Pokémon”", anchor=False)
    st.markdown(
        f"**Not sure**: when its best guess gets less than {SURE:.0%}, the answer opens with "
        "“Not sure” and names the next candidates, so you can compare their pictures."
    )
    if rule is None:
        st.markdown(
            "**Not a Pokémon**: this model has no rule for turning a picture away; it always "
            "names its best guess, even for a picture of no Pokémon at all."
        )
        return
    when = (
        f"its best guess gets less than {rule.threshold:.0%}"
        if rule.score == "msp"  # the rule reads the top probability itself
        else "a picture is too unlike every species it learned"
    )
    st.markdown(
        f"**Not a Pokémon I know**: the answer, instead of a name, when {when}. It turns away "
        "pictures of no Pokémon, and sometimes a real Pokémon shown in an unusual way."
    )
    cards = []
    if rule.false_accept is not None:
        made_up = f"Made-up pictures of no Pokémon ({_NON_POKEMON}) it refused when tested."
        cards.append(("Non-Pokémon turned away", 1 - rule.false_accept, made_up))
    if rule.false_reject is not None:
        known = "Game pictures of species it knows that it refused when tested."
        cards.append(("Pokémon wrongly turned away", rule.false_reject, known))
    if not cards:
        return
    for column, (label, share, meaning) in zip(st.columns(2), cards, strict=False):
        column.metric(label, f"{share:.0%}" if share >= 0.1 else f"{share:.1%}")
        column.caption(meaning)


def _mix_ups(pairs: list[ConfusedPair]) -> None:
    """The pairs it confuses most on the test pictures, as sentences that link to Browse."""
    st.subheader("Species it mixes up", anchor=False)
    names = {s.name: s.display_name for s in session.species_index(session.api())}
    lines = []
    for pair in pairs[:MIX_UPS_SHOWN]:
        a, b = names.get(pair.a, pair.a), names.get(pair.b, pair.b)
        ways = [
            f"{x} taken for {y} {_times(n)}"
            for x, y, n in ((a, b, pair.a_as_b), (b, a, pair.b_as_a))
            if n
        ]
        lines.append(
            f"- **[{a}]({browse_link(pair.a)})** and **[{b}]({browse_link(pair.b)})**: "
            f"{' and '.join(ways) or 'never'}"
        )
    st.markdown("\n".join(lines))
    st.caption("Counted on the game pictures it was tested on. A name opens its page in Browse.")


def _times(n: int) -> str:
    return {1: "once", 2: "twice"}.get(n, f"{n:,} times")


def _speed() -> Latency | None:
    """The API's own timing of its answers since it started, and the user's last one."""
    st.subheader("How fast it answers", anchor=False)
    try:
        latency = route_latency(session.api().metrics())
    except ApiError as exc:
        st.caption(f"The API's timing figures are unavailable: {exc}")
        return None
    last = st.session_state.get("last_latency_ms")
    figures = []
    if latency is not None:
        figures += [
            ("Typical answer", latency.p50_ms),
            ("95 answers in 100 within", latency.p95_ms),
        ]
    if last is not None:
        figures.append(("Your last picture", last))
    if figures:
        for column, (label, ms) in zip(st.columns(3), figures, strict=False):
            column.metric(label, f"{ms:.0f} ms")
    if latency is None:
        st.caption("It has answered no pictures since the API started.")
    else:
        answered = (
            "the one picture"
            if latency.count == 1
            else f"each of the {latency.count:,} pictures (half were quicker than the typical "
            "answer)"
        )
        st.caption(
            f"Time spent inside the Pokédex on {answered} it has answered since it started; "
            "sending the picture over your network comes on top."
        )
    return latency


def _exact_figures(
    info: ModelInfo, latency: Latency | None, feedback: FeedbackAccuracy | None
) -> None:
    """Everything above under its raw name, for the curious."""
    with st.expander("The exact figures"):
        size = info.input_size
        st.markdown(
            f"**{info.name}** version `{info.version}`: the {info.variant} ONNX file on "
            f"{info.runtime} ({info.precision}), {info.num_classes:,} classes, {size}×{size} px "
            f"input, transparency flattened onto RGB {tuple(info.background)}"
            + (", each picture averaged with its mirror image" if info.flip_average else "")
            + f", loaded {info.loaded_at:%Y-%m-%d %H:%M} UTC."
        )
        rows = [(key, _format(key, value)) for key, value in sorted(info.metrics.items())]
        if info.open_set is not None:
            rule = info.open_set
            rows += [
                ("open_set/score", rule.score),
                ("open_set/threshold", f"{rule.threshold:.4g}"),
            ]
            rows += [
                (f"open_set/{key}", f"{value:.2%}")
                for key, value in (
                    ("false_accept", rule.false_accept),
                    ("false_reject", rule.false_reject),
                )
                if value is not None
            ]
        if latency is not None:
            rows += [
                ("predict/p50_ms", f"{latency.p50_ms:.1f}"),
                ("predict/p95_ms", f"{latency.p95_ms:.1f}"),
                ("predict/mean_ms", f"{latency.mean_ms:.1f}"),
                ("predict/count", f"{latency.count:,}"),
            ]
        if feedback is not None:
            rows += [
                ("feedback/window", feedback.window),
                ("feedback/verdicts", f"{feedback.verdicts:,}"),
                ("feedback/agreeing", f"{feedback.agreeing:,}"),
            ]
            if feedback.accuracy is not None:
                rows.append(("feedback/accuracy", f"{feedback.accuracy:.1%}"))
            rows += [(f"feedback/{kind}", f"{n:,}") for kind, n in feedback.by_verdict.items()]
        frame = pd.DataFrame(rows, columns=["figure", "value"])
        st.dataframe(frame, hide_index=True, width="stretch")
        st.caption(
            "`test/` and `photos/`: the bundle's evaluation; `open_set/`: the rule for "
            "“not a Pokémon” (known when the score is at least the threshold); `predict/`: "
            "POST /v1/predict as the API's Prometheus histogram measures it, p50 and p95 "
            "interpolated within its buckets; `feedback/`: GET /v1/monitoring/feedback over the "
            "server's window."
        )


def _format(key: str, value: float) -> str:
    if "acc" in key or "f1" in key:
        return f"{value:.1%}"
    return f"{value:,.4g}"


render()
