"""Paste a picture: Ctrl/Cmd+V anywhere on the page, or a Paste button, sends it to Python.

Streamlit's file uploader takes no paste, and the PyPI components for it (streamlit-paste-button,
st-img-pastebutton) are a button only, without Ctrl+V, and unreleased since 2024; so this is a
small ``st.components.v2`` component (Streamlit's own API, no iframe and no build step). The browser
sends the clipboard's image as base64 in a trigger value, or what went wrong as a short code
that :func:`pasted_picture` turns into a sentence.
"""

from __future__ import annotations

import base64
import binascii
import mimetypes
from collections.abc import Callable
from typing import Any

import streamlit as st

from pokedex.ui.launch import MAX_UPLOAD_MB

MAX_BYTES = MAX_UPLOAD_MB * 1024 * 1024  # the uploader's own limit: a paste is no bigger

_HTML = """
<div class="paste">
  <button type="button" class="paste-button">Paste a picture</button>
  <span class="paste-hint">or press Ctrl+V (⌘V on a Mac)</span>
</div>
"""
_CSS = """
.paste { display: flex; align-items: center; gap: .6rem; flex-wrap: wrap;
         font-family: var(--st-font); }
.paste-button { font: inherit; font-size: .95rem; cursor: pointer; padding: .35rem .9rem;
                border-radius: var(--st-base-radius, .5rem); background: transparent;
                color: var(--st-text-color); border: 1px solid var(--st-border-color, #ccc); }
.paste-button:hover, .paste-button:focus-visible { border-color: var(--st-primary-color);
                                                   color: var(--st-primary-color); }
.paste-hint { font-size: .85rem; opacity: .65; }
"""
# one trigger, "pasted": {"type", "data"} (base64) for a picture, {"error", "size"?} otherwise
_JS = """
export default function ({ data, parentElement, setTriggerValue }) {
  const send = async (blob) => {
    if (!blob.type.startsWith("image/")) return setTriggerValue("pasted", { error: "no-image" });
    if (blob.size > data.max_bytes) {
      return setTriggerValue("pasted", { error: "too-large", size: blob.size });
    }
    const bytes = new Uint8Array(await blob.arrayBuffer());
    let binary = "";  // in slices: one call over 10 MB of arguments overflows the stack
    for (let i = 0; i < bytes.length; i += 0x8000) {
      binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
    }
    setTriggerValue("pasted", { type: blob.type, data: btoa(binary) });
  };
  const onPaste = (event) => {
    const target = event.target;
    const typing = target instanceof HTMLElement &&
      (target.isContentEditable || ["INPUT", "TEXTAREA"].includes(target.tagName));
    if (typing || !event.clipboardData) return;  // text pasted into a field stays there
    event.preventDefault();
    const files = [...event.clipboardData.files];
    const image = files.find((f) => f.type.startsWith("image/"));
    image ? send(image) : setTriggerValue("pasted", { error: "no-image" });
  };
  const onClick = async () => {
    if (!navigator.clipboard || !navigator.clipboard.read) {
      return setTriggerValue("pasted", { error: "no-access" });
    }
    let items;
    try {
      items = await navigator.clipboard.read();
    } catch (err) {
      return setTriggerValue("pasted", { error: "no-access" });
    }
    for (const item of items) {
      const type = item.types.find((t) => t.startsWith("image/"));
      if (type) return send(await item.getType(type));
    }
    setTriggerValue("pasted", { error: "no-image" });
  };
  const button = parentElement.querySelector(".paste-button");
  button.addEventListener("click", onClick);
  document.addEventListener("paste", onPaste);
  return () => {
    button.removeEventListener("click", onClick);
    document.removeEventListener("paste", onPaste);
  };
}
"""

_component = st.components.v2.component("pokedex.paste", html=_HTML, css=_CSS, js=_JS)


def paste_button(key: str, on_paste: Callable[[], None]) -> None:
    """The Paste button and the page's Ctrl/Cmd+V; ``on_paste`` runs with the trigger value
    in ``st.session_state[key]``."""
    _component(key=key, data={"max_bytes": MAX_BYTES}, on_pasted_change=on_paste, width="content")


def pasted_picture(payload: Any) -> tuple[bytes, str]:
    """The picture's bytes and a file name from the component's trigger value; a ValueError
    whose message is the sentence to show when there is no picture in it."""
    if not isinstance(payload, dict):
        raise ValueError("The paste did not arrive: try again.")
    error = payload.get("error")
    if error == "no-image":
        raise ValueError(
            "The clipboard holds no picture: copy an image first (right-click it, Copy image), "
            "then paste."
        )
    if error == "no-access":
        raise ValueError(
            "This browser did not let the page read the clipboard: press Ctrl+V (⌘V on a Mac) "
            "instead, or upload the picture."
        )
    if error == "too-large":
        size = payload.get("size")
        mb = f"{size / 2**20:.1f} MB" if isinstance(size, int | float) else "too large"
        raise ValueError(f"The pasted picture is {mb}, over the {MAX_UPLOAD_MB} MB limit.")
    kind, text = payload.get("type"), payload.get("data")
    if error is not None or not isinstance(kind, str) or not isinstance(text, str):
        raise ValueError("The paste did not arrive: try again.")
    if len(text) > MAX_BYTES * 4 // 3 + 4:  # base64 grows 4/3: refuse before decoding
        raise ValueError(f"The pasted picture is over the {MAX_UPLOAD_MB} MB limit.")
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("The pasted picture arrived damaged: try again.") from None
    return data, "pasted" + (mimetypes.guess_extension(kind) or "")
