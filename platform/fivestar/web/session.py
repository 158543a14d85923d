"""The database session of the current request (one per request, closed at teardown)."""

from __future__ import annotations

from flask import current_app, g
from sqlalchemy.orm import Session, sessionmaker


def sessionmaker_for_app() -> sessionmaker[Session]:
    factory: sessionmaker[Session] = current_app.extensions["fivestar.sessionmaker"]
    return factory


def db() -> Session:
    """The request's session. Views commit it once, after the service call succeeded."""
    session: Session | None = g.get("_db_session")
    if session is None:
        session = sessionmaker_for_app()()
        g._db_session = session
    return session


def close_session(_exc: BaseException | None = None) -> None:
    session: Session | None = g.pop("_db_session", None)
    if session is not None:
        session.close()
