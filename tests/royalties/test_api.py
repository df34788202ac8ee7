"""The admin report API and a show's analytics (JSON and the page), as their users call them:
who may, what they get (checked against the hand-built world), and refusals as JSON."""

from __future__ import annotations

import csv
import io
import itertools
import xml.etree.ElementTree as ET
from datetime import datetime

import httpx
import pytest
from fastapi import FastAPI

from onair.accounts.models import Role
from onair.rooms.models import ChatMessage
from onair.royalties import report
from onair.shows.models import Show
from onair.stage.models import CoHost
from tests.moderation.people import MakePerson, Person
from tests.royalties import world

REPORT = "/api/v1/admin/reports/royalties"


@pytest.fixture
async def seeded(app: FastAPI, people: MakePerson) -> dict[str, Person | world.World]:
    host = await people("ada")
    cohost = await people("cora")
    fan = await people("fan")
    async with app.state.onair.sessions() as db:
        built = await world.build(db, host.id)
        a = built.shows["A"]
        db.add(
            CoHost(
                show_id=a,
                user_id=cohost.id,
                invited_at=world.at("2026-02-01T00:00:00"),
                accepted_at=world.at("2026-02-01T00:01:00"),
            )
        )
        when = world.at("2026-03-01T00:30:00")
        db.add_all(
            [
                ChatMessage(show_id=a, user_id=fan.id, text="hello", created_at=when),
                ChatMessage(show_id=a, user_id=fan.id, text="more", created_at=when),
                ChatMessage(show_id=a, user_id=cohost.id, text="welcome", created_at=when),
                ChatMessage(
                    show_id=a, user_id=cohost.id, text="a link", created_at=when, held_reason="link"
                ),
                ChatMessage(
                    show_id=a, user_id=fan.id, text="oops", created_at=when, deleted_at=when
                ),
            ]
        )
        await db.commit()
    return {
        "world": built,
        "host": host,
        "cohost": cohost,
        "fan": fan,
        "mod": await people("mod", Role.moderator),
        "admin": await people("boss", Role.admin),
    }


def _person(seeded: dict[str, Person | world.World], name: str) -> Person:
    person = seeded[name]
    assert isinstance(person, Person)
    return person


def _world(seeded: dict[str, Person | world.World]) -> world.World:
    built = seeded["world"]
    assert isinstance(built, world.World)
    return built


# --- the report


async def test_an_admin_gets_the_report_as_json_with_the_totals(seeded: dict) -> None:
    admin = _person(seeded, "admin")
    r = await admin.client.get(REPORT, params={"from": world.MARCH[0], "to": world.MARCH[1]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["totals"] == {
        "recordings": 3,
        "plays": 6,
        "performances": 37,
        "aggregate_tuning_hours": world.MARCH_ATH,
    }
    got = {
        x["title"]: (x["featured_artist"], x["performances"], x["plays"])
        for x in body["recordings"]
    }
    assert got == world.MARCH_ROWS
    blue = next(x for x in body["recordings"] if x["title"] == "Blue Hour")
    assert (blue["isrc"], blue["album"], blue["label"]) == (
        "USABC2600001",
        "Night Songs",
        "Lantern Records",
    )


async def test_an_admin_downloads_the_csv_and_soundexchange_files(seeded: dict) -> None:
    admin = _person(seeded, "admin")
    period = {"from": world.MARCH[0], "to": world.MARCH[1]}
    r = await admin.client.get(REPORT, params={**period, "format": "csv"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    assert 'filename="royalties-20260301-20260331.csv"' in r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert sum(int(x["actual_total_performances"]) for x in rows) == 37
    assert r.headers["x-report-aggregate-tuning-hours"] == "46.000"
    r = await admin.client.get(REPORT, params={**period, "format": "soundexchange"})
    assert r.status_code == 200, r.text
    assert 'filename="OnAir20260301_20260331_A.txt"' in r.headers["content-disposition"]
    lines = r.content.decode().split("\r\n")
    assert lines[0] == "|".join(report.SOUNDEXCHANGE_COLUMNS)
    assert sorted(int(x.split("|")[7]) for x in lines[1:-1]) == [5, 15, 17]
    assert r.headers["x-report-performances"] == "37"


@pytest.mark.parametrize("who", ["host", "fan", "mod"])
async def test_only_admins_read_the_report(seeded: dict, who: str) -> None:
    r = await _person(seeded, who).client.get(
        REPORT, params={"from": "2026-03-01", "to": "2026-03-31"}
    )
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "forbidden"


async def test_anonymous_is_asked_to_sign_in(client: httpx.AsyncClient) -> None:
    r = await client.get(REPORT, params={"from": "2026-03-01", "to": "2026-03-31"})
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "unauthorized"


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"from": "2026-03-31", "to": "2026-03-01"}, "invalid_period"),
        ({"from": "2026-02-30", "to": "2026-03-01"}, "invalid"),
        ({"from": "2026-03-01"}, "invalid"),
        ({"from": "2026-03-01", "to": "2026-03-31", "format": "xml"}, "invalid"),
    ],
)
async def test_bad_periods_are_refused_as_json(seeded: dict, params: dict, code: str) -> None:
    r = await _person(seeded, "admin").client.get(REPORT, params=params)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == code


# --- a show's analytics


async def test_the_host_sees_the_shows_audience(seeded: dict) -> None:
    a = _world(seeded).shows["A"]
    r = await _person(seeded, "host").client.get(f"/api/v1/shows/{a}/analytics")
    assert r.status_code == 200, r.text
    body = r.json()
    # 4 listeners for 2 h, 2 for 1 h, then none: 10 listener-hours over 3 h.
    assert body["peak_listeners"] == 4
    assert body["listener_hours"] == pytest.approx(10.0)
    assert body["average_listeners"] == pytest.approx(3.33)
    assert body["reactions"] == 7
    assert (body["chat_messages"], body["chatters"]) == (3, 2)  # not the held nor the deleted
    by_kind = {t["kind"]: (t["peak"], t["listener_hours"], t["share"]) for t in body["transports"]}
    assert by_kind == {
        "webrtc": (1, 2.0, 0.2),
        "hls": (1, 2.0, 0.2),
        "stream": (2, 4.0, 0.4),
        "smart_speaker": (1, 2.0, 0.2),
    }
    assert [s["listeners"] for s in body["samples"]] == [4, 2, 0]
    setlist = [(s["title"], s["performances"], s["skipped"]) for s in body["setlist"]]
    assert setlist == [
        ("Edge Case", 9, False),
        ("Second Wind", 3, False),
        ("Blue Hour", 10, False),
        ("Blue Hour", 0, False),
        ("Blue Hour", 7, False),
        ("Second Wind", 12, True),
        ("Edge Case", 5, False),
        ("Outside", 4, False),
    ]
    assert body["setlist"][0]["average_listeners"] == 9.0


@pytest.mark.parametrize(
    ("who", "status"), [("host", 200), ("cohost", 200), ("admin", 200), ("mod", 403), ("fan", 403)]
)
async def test_only_the_crew_and_admins_see_analytics(seeded: dict, who: str, status: int) -> None:
    a = _world(seeded).shows["A"]
    person = _person(seeded, who)
    r = await person.client.get(f"/api/v1/shows/{a}/analytics")
    assert r.status_code == status, r.text
    page = await person.client.get(f"/shows/{a}/analytics", headers={"accept": "text/html"})
    assert page.status_code == status
    assert page.headers["content-type"].startswith("text/html")


async def test_strangers_are_sent_to_sign_in(client: httpx.AsyncClient, seeded: dict) -> None:
    a = _world(seeded).shows["A"]
    r = await client.get(f"/api/v1/shows/{a}/analytics")
    assert r.status_code == 401
    page = await client.get(f"/shows/{a}/analytics", headers={"accept": "text/html"})
    assert page.status_code == 303
    assert page.headers["location"] == f"/login?next=/shows/{a}/analytics"
    missing = await _person(seeded, "host").client.get("/api/v1/shows/999999/analytics")
    assert missing.status_code == 404


def _svg(html: str) -> ET.Element:
    start, end = html.index("<svg"), html.index("</svg>") + len("</svg>")
    return ET.fromstring(html[start:end])


async def test_the_plot_is_the_samples(seeded: dict) -> None:
    """Every vertex of the line maps back, through the axes, to a sample."""
    a = _world(seeded).shows["A"]
    host = _person(seeded, "host")
    data = (await host.client.get(f"/api/v1/shows/{a}/analytics")).json()
    page = await host.client.get(f"/shows/{a}/analytics")
    assert page.status_code == 200
    svg = _svg(page.text)
    ns = {"s": "http://www.w3.org/2000/svg"}
    t0, t1, top = float(svg.get("data-start")), float(svg.get("data-end")), int(svg.get("data-max"))
    x0, y0, w, h = (float(v) for v in svg.get("data-area", "").split())
    line = svg.find("s:polyline", ns)
    assert line is not None
    vertices = [tuple(float(v) for v in p.split(",")) for p in line.get("points", "").split()]

    def back(x: float, y: float) -> tuple[float, float]:
        return t0 + (x - x0) / w * (t1 - t0), (y0 + h - y) / h * top

    seen = [back(x, y) for x, y in vertices]
    samples = [
        (datetime.fromisoformat(s["at"]).timestamp(), s["listeners"]) for s in data["samples"]
    ]
    # A step line: (t_i, v_i-1) then (t_i, v_i) at each sample, ending at the end of the span.
    want = [(samples[0][0], samples[0][1])]
    for (_, before), (t, v) in itertools.pairwise(samples):
        want += [(t, before), (t, v)]
    want.append((datetime.fromisoformat(data["end"]).timestamp(), samples[-1][1]))
    assert len(seen) == len(want)
    for (t, v), (wt, wv) in zip(seen, want, strict=True):
        assert t == pytest.approx(wt, abs=(t1 - t0) / 1000)
        assert v == pytest.approx(wv, abs=top / 500)
    assert top == 4  # 4 listeners at the peak: the axis goes to 4 in steps of 1
    ticks = [
        t.text
        for t in svg.iter("{http://www.w3.org/2000/svg}text")
        if t.get("class") == "plot-tick"
    ]
    assert ticks[:5] == ["0", "1", "2", "3", "4"]
    assert ticks[5:] == ["23:00", "00:00", "01:00", "02:00"]
    assert "peak 4 listeners" in (svg.findtext("s:desc", namespaces=ns) or "")


async def test_the_page_says_it_all_and_escapes_titles(seeded: dict, app: FastAPI) -> None:
    a = _world(seeded).shows["A"]
    host = _person(seeded, "host")
    async with app.state.onair.sessions() as db:  # ended shows cannot be renamed by the API
        show = await db.get(Show, a)
        assert show is not None
        show.title = "<b>Night</b> & Day"
        await db.commit()
    page = (await host.client.get(f"/shows/{a}/analytics")).text
    assert "<b>Night</b>" not in page and "&lt;b&gt;Night&lt;/b&gt; &amp; Day" in page
    for text in ("Peak listeners", "Listening hours", "Smart speaker", "Second Wind", "skipped"):
        assert text in page
    assert 'data-stat="peak">4<' in page and 'data-stat="reactions">7<' in page


async def test_a_show_without_samples_says_so(seeded: dict) -> None:
    host = _person(seeded, "host")
    r = await host.client.post("/api/v1/shows", json={"title": "Later"})
    show_id = r.json()["id"]
    data = (await host.client.get(f"/api/v1/shows/{show_id}/analytics")).json()
    assert (data["peak_listeners"], data["listener_hours"], data["samples"]) == (0, 0, [])
    page = (await host.client.get(f"/shows/{show_id}/analytics")).text
    assert "<svg" not in page and "No listener counts yet" in page


async def test_the_show_page_links_the_analytics_for_those_who_may_see_them(seeded: dict) -> None:
    a = _world(seeded).shows["A"]
    link = f'href="/shows/{a}/analytics"'
    for who, sees in (
        ("host", True),
        ("cohost", True),
        ("admin", True),
        ("mod", False),
        ("fan", False),
    ):
        page = await _person(seeded, who).client.get(f"/shows/{a}")
        assert page.status_code == 200
        assert (link in page.text) is sees, who
