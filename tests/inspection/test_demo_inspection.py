"""`fivestar demo`: logging in as `inspector` in demo-east shows an audit trail and a line of each
anomaly kind the seeded data allows (the member round and both branch rounds)."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from fivestar.demo.seed import DEMO_PASSWORD, seed_demo
from fivestar.inspection import trail


def test_the_demo_inspector_finds_something_of_each_kind(app: Any, session: Session) -> None:
    from fivestar.tenants.models import Tenant

    seed_demo(session)
    session.flush()
    tenant = session.scalar(select(Tenant).where(Tenant.slug == "demo-east"))
    assert tenant is not None
    client = app.test_client()
    response = client.post("/t/demo-east/login", data={"username": "inspector", "password": DEMO_PASSWORD})
    assert response.status_code == 302
    home = client.get("/t/demo-east/").get_data(as_text=True)
    assert "/t/demo-east/inspection/anomalies" in home
    listing = client.get("/t/demo-east/inspection/audit").get_data(as_text=True)
    assert len(re.findall(r'id="event-\d+"', listing)) == trail.PAGE_SIZE
    found: set[str] = set()
    page = client.get("/t/demo-east/inspection/anomalies").get_data(as_text=True)
    rounds = re.findall(r'<option value="([mb]\d+)"', page)
    assert len(rounds) == 4  # the running member round and the closed period before it; two branch rounds
    for value in rounds:
        html = client.get(f"/t/demo-east/inspection/anomalies?round={value}").get_data(as_text=True)
        for kind, count in re.findall(r'id="kind-([a-z_]+)">\s*<h2>[^<]*<span class="badge[^"]*">(\d+)<', html):
            if int(count):
                found.add(kind)
    assert found == {"proposed_above", "joint_gap", "identical_scores", "objection_no_reason", "late_change"}
