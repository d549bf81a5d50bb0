"""Dex facts, species pictures, top-5 links and the type chart page under Streamlit's AppTest,
with the API faked at the HTTP layer."""

from __future__ import annotations

import base64
import io

from PIL import Image
from streamlit.proto.SelectWidgetFilterMode_pb2 import SelectWidgetFilterMode

from pokedex.core.schemas import TypeMatchups, Weakness
from pokedex.dex.catalog import Ability
from pokedex.dex.typechart import TYPES
from pokedex.ui.api import PokedexApi
from tests.dex.facts import CHARMANDER_LINE
from tests.ui.bundle import BY_NAME
from tests.ui.conftest import CHART, FakeApi, MakeApp, species_info


def _webp(colour: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGBA", (96, 96), (*colour, 255)).save(buf, "WEBP")
    return buf.getvalue()


def _with_facts(fake_api: FakeApi) -> bytes:
    """Charizard answers with every dex fact and a picture; nobody else has a picture."""
    info = species_info("charizard").model_copy(
        update={
            "height_m": 1.7,
            "weight_kg": 90.5,
            "abilities": [Ability(name="Blaze"), Ability(name="Solar Power", hidden=True)],
            "evolution": list(CHARMANDER_LINE),
            "multipliers": [
                Weakness(type=t, multiplier=m) for t, m in CHART.multipliers(("fire", "flying"))
            ],
        }
    )
    fake_api.set("GET", "/v1/species/charizard", info)
    picture = _webp(BY_NAME["charizard"].colour)
    fake_api.set("GET", "/v1/species/charizard/image", picture)
    return picture


def _markdown(at: object) -> str:
    return "\n".join(m.value for m in at.markdown)  # type: ignore[attr-defined]


def test_browse_shows_the_dex_facts_and_the_picture(make_app: MakeApp, fake_api: FakeApi) -> None:
    picture = _with_facts(fake_api)
    at = make_app().run().switch_page("views/browse.py")
    at.query_params["species"] = "charizard"
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    text = _markdown(at)
    assert "**Size** · 1.7 m · 90.5 kg" in text
    assert "**Abilities** · Blaze · Solar Power (hidden)" in text
    assert "Charmander → Charmeleon · level 16" in text
    assert "Charmeleon → <b>Charizard</b> · level 36" in text
    # every multiplier: x4 rock, x2 water and electric, then x1/2 and x1/4 down to x0 ground
    for label in ("**×4**", "**×2**", "**×½**", "**×¼**", "**×0**"):
        assert label in text, label
    assert ">ground</span>" in "".join(
        m.value for m in at.markdown if "pokedex-resisted" in m.value
    )
    assert f'src="data:image/webp;base64,{base64.b64encode(picture).decode()}"' in text
    assert "pokedex-no-picture" not in text


def test_browse_without_facts_or_picture_shows_a_placeholder(
    make_app: MakeApp, fake_api: FakeApi
) -> None:
    at = make_app().run().switch_page("views/browse.py")
    at.query_params["species"] = "gengar"
    at.run()
    assert not at.exception
    text = _markdown(at)
    assert 'class="pokedex-picture pokedex-no-picture"' in text
    assert 'aria-label="No picture of Gengar"' in text
    assert "**Size**" not in text  # an old catalog: the facts are left out, not shown empty
    assert "**Evolution**" not in text
    assert fake_api.calls("GET", "/v1/species/gengar/image") == 1


def test_browse_search_keeps_pokedex_order_so_a_number_finds_its_species(
    make_app: MakeApp,
) -> None:
    at = make_app().run().switch_page("views/browse.py").run()
    search = at.selectbox(key="species")
    assert search.proto.filter_mode == SelectWidgetFilterMode.FILTER_MODE_CONTAINS
    matches = [o for o in search.options if "6" in o.lower()]
    assert matches[0] == "#006 Charizard"  # contains-filtering keeps this order


def test_top5_names_link_to_browse_with_pictures(make_app: MakeApp, fake_api: FakeApi) -> None:
    fake_api.set("GET", "/v1/species/pikachu/image", _webp(BY_NAME["pikachu"].colour))
    at = make_app().run()
    at.file_uploader[0].set_value(("pika.png", _webp((250, 215, 30)), "image/png")).run()
    assert not at.exception
    labels = [p.proto.text for p in at.get("progress")]
    assert labels[0] == "[**Pikachu**](browse?species=pikachu) #025 · :green[62.0%]"
    assert labels[1].endswith(":orange[20.0%]")  # charmander
    assert labels[2].endswith(":gray[10.0%]")  # jigglypuff: bars coloured by confidence
    assert all("](browse?species=" in label for label in labels)
    pictures = [m.value for m in at.markdown if "pokedex-picture" in m.value]
    assert len(pictures) == 5
    assert sum("pokedex-no-picture" in p for p in pictures) == 4  # only pikachu has one


def test_type_chart_page_draws_18_by_18(make_app: MakeApp, fake_api: FakeApi) -> None:
    for t in TYPES:
        fake_api.set("GET", f"/v1/types/{t}", TypeMatchups.model_validate(CHART.matchups(t)))
    at = make_app().run().switch_page("views/typechart.py").run()
    assert not at.exception
    [table] = [m.value for m in at.markdown if "pokedex-typechart" in m.value]
    assert table.count('class="pokedex-cell"') == 18 * 18
    assert 'title="ground → flying: ×0"' in table
    assert 'title="water → fire: ×2"' in table
    assert 'title="fire → water: ×0.5"' in table
    assert 'title="normal → fire: ×1"' in table


def test_client_reads_a_picture_and_none_on_404(client: PokedexApi, fake_api: FakeApi) -> None:
    fake_api.set("GET", "/v1/species/pikachu/image", b"RIFF-webp")
    assert client.species_image("pikachu") == b"RIFF-webp"
    assert client.species_image("gengar") is None
    assert fake_api.requests[-1][1] == "/v1/species/gengar/image"
