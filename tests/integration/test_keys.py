"""API keys in the service layer on SQLite and PostgreSQL: lifecycle, hashing, usage, CLI."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa
from pydantic import SecretStr
from typer.testing import CliRunner

from coinlens.cli.main import app as cli
from coinlens.domain.errors import NotFound, UserInputError, ValidationFailed
from coinlens.services import keys as ks
from coinlens.services.context import Context
from coinlens.settings import Settings
from coinlens.storage.tables_keys import api_keys

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


def _new(ctx: Context, **kw: object) -> ks.CreatedKey:
    return ks.create_key(ctx, ks.KeySpec(name="n", **kw), now=NOW)  # type: ignore[arg-type]


def test_only_an_hmac_is_stored_and_the_key_verifies(ctx: Context) -> None:
    created = _new(ctx, email="a@example.org")
    with ctx.engine.connect() as conn:
        row = conn.execute(sa.select(api_keys)).one()._mapping
    assert created.plaintext not in str(dict(row))
    assert row["key_hash"] == ks.key_hash(ctx.settings.secret.get_secret_value(), created.plaintext)
    principal = ks.KeyVerifier(ctx).verify(created.plaintext)
    assert principal.account == created.key.account
    assert principal.scopes == frozenset(ks.SCOPES)


def test_a_key_under_another_server_secret_is_invalid(
    sqlite_ctx: Context, sqlite_settings: Settings
) -> None:
    ctx, settings = sqlite_ctx, sqlite_settings
    created = _new(ctx)
    other = Context(settings.model_copy(update={"secret": SecretStr("another")}), ctx.engine)
    with pytest.raises(ks.KeyRejected) as err:
        ks.KeyVerifier(other).verify(created.plaintext)
    assert err.value.reason == "invalid"


def test_a_well_formed_unknown_key_is_invalid(sqlite_ctx: Context) -> None:
    ctx = sqlite_ctx
    plaintext, _ = ks.new_plaintext()
    with pytest.raises(ks.KeyRejected) as err:
        ks.KeyVerifier(ctx).verify(plaintext)
    assert err.value.reason == "invalid"


def test_revoked_and_expired_keys_are_told_apart(sqlite_ctx: Context) -> None:
    ctx = sqlite_ctx
    revoked = _new(ctx)
    ks.revoke_key(ctx, revoked.key.account, revoked.key.id)
    expiring = _new(ctx, expires_at=NOW + timedelta(hours=1))
    verifier = ks.KeyVerifier(ctx, ttl=0)
    with pytest.raises(ks.KeyRejected) as err:
        verifier.verify(revoked.plaintext)
    assert err.value.reason == "revoked"
    assert verifier.verify(expiring.plaintext, now=NOW).key_id == expiring.key.id
    with pytest.raises(ks.KeyRejected) as err:
        verifier.verify(expiring.plaintext, now=NOW + timedelta(hours=2))
    assert err.value.reason == "expired"


def test_a_verified_key_is_remembered_only_while_its_row_is_fresh(sqlite_ctx: Context) -> None:
    created = _new(sqlite_ctx, expires_at=datetime.now(UTC) + timedelta(hours=1))
    verifier = ks.KeyVerifier(sqlite_ctx)
    assert verifier.recently_verified(created.plaintext) is None
    principal = verifier.verify(created.plaintext)
    assert verifier.recently_verified(created.plaintext) == principal
    flipped = "A" if created.plaintext[-7] != "A" else "B"
    other_secret = created.plaintext[:-7] + flipped + created.plaintext[-6:]
    assert verifier.recently_verified(other_secret) is None  # same lookup id, other secret
    verifier.forget(created.key.lookup_id)  # a revoke or rotate through this process
    assert verifier.recently_verified(created.plaintext) is None
    no_cache = ks.KeyVerifier(sqlite_ctx, ttl=0)
    no_cache.verify(created.plaintext)
    assert no_cache.recently_verified(created.plaintext) is None
    assert no_cache.due(created.key.lookup_id)


def test_rotation_keeps_the_old_key_for_the_overlap_only(sqlite_ctx: Context) -> None:
    ctx = sqlite_ctx
    old = _new(ctx, scopes=("read",), plan="pro")
    new = ks.rotate_key(ctx, old.key.account, old.key.id, overlap=timedelta(minutes=5), now=NOW)
    assert new.key.rotated_from == old.key.id
    assert (new.key.scopes, new.key.plan, new.key.account) == (("read",), "pro", old.key.account)
    verifier = ks.KeyVerifier(ctx, ttl=0)
    assert verifier.verify(old.plaintext, now=NOW + timedelta(minutes=4)).key_id == old.key.id
    with pytest.raises(ks.KeyRejected, match="expired"):
        verifier.verify(old.plaintext, now=NOW + timedelta(minutes=6))
    assert verifier.verify(new.plaintext, now=NOW + timedelta(days=1)).key_id == new.key.id
    with pytest.raises(UserInputError):
        ks.rotate_key(
            ctx, old.key.account, old.key.id, overlap=timedelta(0), now=NOW + timedelta(hours=1)
        )


def test_a_key_in_its_overlap_is_not_rotated_twice(ctx: Context) -> None:
    """A second rotation (a retried request, a second click) would mint a live key nobody
    kept: refused, even when both run at once; revoking the successor allows it again."""
    old = _new(ctx, scopes=("read",), plan="pro")
    account, overlap = old.key.account, timedelta(minutes=5)

    def rotate() -> ks.CreatedKey | Exception:
        try:
            return ks.rotate_key(ctx, account, old.key.id, overlap=overlap, now=NOW)
        except Exception as exc:
            return exc

    with ThreadPoolExecutor(4) as pool:
        outcomes = list(pool.map(lambda _: rotate(), range(4)))
    made = [o for o in outcomes if isinstance(o, ks.CreatedKey)]
    assert len(made) == 1, outcomes
    refused = [o for o in outcomes if not isinstance(o, ks.CreatedKey)]
    assert all(isinstance(o, UserInputError) for o in refused), refused
    assert f"already rotated to key {made[0].key.id}" in str(refused[0])
    successors = [
        k.id for k in ks.list_keys(ctx, account, cursor=None, limit=10).items if k.rotated_from
    ]
    assert successors == [made[0].key.id]
    ks.revoke_key(ctx, account, made[0].key.id)
    again = ks.rotate_key(ctx, account, old.key.id, overlap=overlap, now=NOW)
    assert again.key.rotated_from == old.key.id


def test_other_accounts_keys_do_not_exist(ctx: Context) -> None:
    a, b = _new(ctx), _new(ctx)
    for action in (
        lambda: ks.get_key(ctx, a.key.account, b.key.id),
        lambda: ks.revoke_key(ctx, a.key.account, b.key.id),
        lambda: ks.rotate_key(ctx, a.key.account, b.key.id, overlap=timedelta(0)),
    ):
        with pytest.raises(NotFound):
            action()
    assert ks.get_key(ctx, b.key.account, b.key.id).revoked_at is None


def test_listing_pages_through_one_account_only(ctx: Context) -> None:
    first = _new(ctx)
    for _ in range(4):
        ks.create_key(ctx, ks.KeySpec(name="x", account=first.key.account))
    _new(ctx)  # another account
    seen, cursor = [], None
    while True:
        page = ks.list_keys(ctx, first.key.account, cursor=cursor, limit=2)
        seen += [k.id for k in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert len(seen) == 5
    assert seen == sorted(set(seen))
    with pytest.raises(ValidationFailed):
        ks.list_keys(ctx, first.key.account, cursor="garbage!", limit=2)


@pytest.mark.parametrize(
    "spec",
    [
        ks.KeySpec(),
        ks.KeySpec(name="x", scopes=("root",)),
        ks.KeySpec(name="x", scopes=()),
        ks.KeySpec(name="x", plan="platinum"),
        ks.KeySpec(name="x", plan="anonymous"),
    ],
)
def test_bad_specs_are_refused(sqlite_ctx: Context, spec: ks.KeySpec) -> None:
    ctx = sqlite_ctx
    with pytest.raises(ValidationFailed):
        ks.create_key(ctx, spec)


def test_a_failed_usage_write_keeps_its_counts_for_the_next(sqlite_ctx: Context) -> None:
    ctx, a = sqlite_ctx, _new(sqlite_ctx)
    meter = ks.UsageMeter()
    for _ in range(3):
        meter.record(a.key.id, NOW.timestamp())
    with ctx.engine.begin() as conn:  # the table is away: the write fails
        conn.exec_driver_sql("ALTER TABLE usage RENAME TO usage_away")
    with pytest.raises(sa.exc.OperationalError):
        meter.flush(ctx)
    meter.record(a.key.id, NOW.timestamp() + 60)  # a request while it was failing
    with ctx.engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE usage_away RENAME TO usage")

    assert meter.flush(ctx) == 4
    page = ks.usage(ctx, a.key.account, start=NOW.date(), end=NOW.date(), cursor=None, limit=5)
    assert [u.requests for u in page.items] == [4]
    assert ks.get_key(ctx, a.key.account, a.key.id).last_used_at == NOW + timedelta(seconds=60)


def test_usage_is_metered_per_key_and_day(ctx: Context) -> None:
    a = _new(ctx)
    b = ks.create_key(ctx, ks.KeySpec(name="b", account=a.key.account))
    meter = ks.UsageMeter()
    now = NOW.timestamp()
    for _ in range(3):
        meter.record(a.key.id, now)
    meter.record(a.key.id, (NOW + timedelta(days=1)).timestamp())
    meter.record(b.key.id, now)
    assert meter.flush(ctx) == 5
    meter.record(a.key.id, now)
    assert meter.flush(ctx) == 1
    assert meter.flush(ctx) == 0
    page = ks.usage(
        ctx, a.key.account, start=date(2026, 3, 1), end=date(2026, 3, 2), cursor=None, limit=2
    )
    rows = [(u.day.day, u.key_id, u.requests) for u in page.items]
    assert rows == [(1, a.key.id, 4), (1, b.key.id, 1)]
    assert page.next_cursor is not None
    rest = ks.usage(
        ctx,
        a.key.account,
        start=date(2026, 3, 1),
        end=date(2026, 3, 2),
        cursor=page.next_cursor,
        limit=2,
    )
    assert [(u.day.day, u.requests) for u in rest.items] == [(2, 1)]
    assert ks.get_key(ctx, a.key.account, a.key.id).last_used_at == NOW + timedelta(days=1)
    other = _new(ctx)
    assert (
        ks.usage(
            ctx,
            other.key.account,
            start=date(2026, 3, 1),
            end=date(2026, 3, 2),
            cursor=None,
            limit=9,
        ).items
        == []
    )


def test_idempotency_records_claim_once(ctx: Context) -> None:
    assert ks.claim_idempotency(ctx, "ip:x", None, "k1", "h1") is None
    found = ks.claim_idempotency(ctx, "ip:x", None, "k1", "h1")
    assert found is not None
    assert found.status is None
    ks.finish_idempotency(ctx, "ip:x", "k1", 201, b"{}", "application/json")
    found = ks.claim_idempotency(ctx, "ip:x", None, "k1", "h2")
    assert found is not None
    assert (found.status, found.request_hash) == (201, "h1")
    assert ks.claim_idempotency(ctx, "ip:y", None, "k1", "h1") is None
    ks.release_idempotency(ctx, "ip:y", "k1")
    assert ks.claim_idempotency(ctx, "ip:y", None, "k1", "h1") is None


def test_cli_creates_lists_rotates_and_revokes(sqlite_settings: Settings) -> None:
    runner = CliRunner()
    opts = ["--data-dir", str(sqlite_settings.data_dir)]
    made = runner.invoke(
        cli, ["keys", "create", "--name", "ops", "--scope", "read", "--plan", "pro", *opts]
    )
    assert made.exit_code == 0, made.output
    plaintext = next(w for w in made.output.split() if w.startswith(ks.PREFIX))
    account = made.output.split("account ")[1].split(",")[0]
    listed = runner.invoke(cli, ["keys", "list", "--account", account, *opts], terminal_width=200)
    assert listed.exit_code == 0
    assert "ops" in listed.output
    assert plaintext not in listed.output
    rotated = runner.invoke(
        cli, ["keys", "rotate", "1", "--account", account, "--overlap", "0", *opts]
    )
    assert rotated.exit_code == 0
    assert ks.PREFIX in rotated.output
    revoked = runner.invoke(cli, ["keys", "revoke", "2", "--account", account, *opts])
    assert revoked.exit_code == 0
    assert "revoked" in revoked.output
    missing = runner.invoke(cli, ["keys", "revoke", "2", "--account", "nobody", *opts])
    assert missing.exit_code == 1


def test_demo_key_is_created_once_and_never_stored_in_plaintext(sqlite_ctx: Context) -> None:
    from coinlens.services.keys import CreatedKey, ensure_demo_key

    first = ensure_demo_key(sqlite_ctx)
    again = ensure_demo_key(sqlite_ctx)
    assert isinstance(first, CreatedKey)
    assert first.key.scopes == ("read",)
    assert not isinstance(again, CreatedKey)
    assert again.id == first.key.id
    with sqlite_ctx.engine.connect() as conn:
        dump = "\n".join(str(r) for r in conn.execute(sa.text("SELECT * FROM api_keys")))
    assert first.plaintext not in dump
