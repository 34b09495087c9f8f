"""Accounts, invites and Vault keys: sign up, authenticate, end sessions, mint and revoke keys.

Plain functions over an explicit SQLAlchemy session; the caller commits.
"""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from vault.billing.balances import record_signup_credit
from vault.clock import utcnow
from vault.errors import Conflict, Forbidden, NotFound, RateLimited, Unauthorized
from vault.models import ApiKey, Invite, User
from vault.ratelimit import LoginThrottle
from vault.security import PasswordHashing, hash_vault_key, mint_invite_code, mint_vault_key

BAD_CREDENTIALS = "Incorrect email or password."
SIGNUP_CLOSED = "Sign-up is closed on this server; ask an admin for an account."
INVITE_REQUIRED = "Sign-up is by invitation: an invite code is required."
INVITE_INVALID = "This invite code is not valid: it is mistyped, used already, expired or revoked."


def get_user(session: Session, user_id: int) -> User:
    """The user with `user_id`, or `NotFound`."""
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("No such user.")
    return user


def find_user_by_email(session: Session, email: str) -> User | None:
    """The user with `email` (case-insensitive), or None."""
    return session.scalar(select(User).where(User.email == email.strip().lower()))


def register_user(
    session: Session, email: str, password: str, passwords: PasswordHashing, balance_nano: int
) -> User:
    """Create an ordinary user with the starting balance; `Conflict` if the email is taken."""
    if find_user_by_email(session, email) is not None:
        raise Conflict("An account with this email already exists.")
    user = User(email=email, password_hash=passwords.hash(password), balance_nano=balance_nano)
    session.add(user)
    try:
        session.flush()
    except IntegrityError as exc:  # a concurrent registration won the race
        session.rollback()
        raise Conflict("An account with this email already exists.") from exc
    record_signup_credit(session, user)
    return user


def refuse_closed_registration(registration: str) -> None:
    """`Forbidden` when the operator closed sign-up (`VAULT_REGISTRATION=closed`)."""
    if registration == "closed":
        raise Forbidden(SIGNUP_CLOSED)


def sign_up(session: Session, email: str, password: str, passwords: PasswordHashing, balance_nano: int,
            registration: str, invite_code: str | None, now: datetime) -> User:
    """Register a user as `registration` allows: `open`, `invite` (redeeming `invite_code`) or `closed`.

    A refused invite rolls the new account back: it is `Forbidden` and nothing is created.
    """
    refuse_closed_registration(registration)
    if registration != "invite":
        return register_user(session, email, password, passwords, balance_nano)
    code = (invite_code or "").strip()
    if not code:
        raise Forbidden(INVITE_REQUIRED, fields={"invite_code": INVITE_REQUIRED})
    if session.scalar(select(Invite.id).where(redeemable(code, now))) is None:  # before paying for a hash
        raise Forbidden(INVITE_INVALID, fields={"invite_code": INVITE_INVALID})
    user = register_user(session, email, password, passwords, balance_nano)
    redeem_invite(session, code, user, now)
    return user


def redeemable(code: str, now: datetime):
    """The condition an invite must meet to be redeemed with `code` at `now`."""
    return (Invite.code_hash == hash_vault_key(code)) & Invite.used_at.is_(None) & or_(
        Invite.expires_at.is_(None), Invite.expires_at > now)


def redeem_invite(session: Session, code: str, user: User, now: datetime) -> None:
    """Mark the invite used by `user`, in one conditional UPDATE, so two sign-ups cannot share it.

    If it is no longer redeemable, the transaction (with `user`) is rolled back: `Forbidden`.
    """
    result = session.execute(update(Invite).where(redeemable(code, now)).values(used_by=user.id, used_at=now)
                             .execution_options(synchronize_session=False))
    if result.rowcount != 1:
        session.rollback()
        raise Forbidden(INVITE_INVALID, fields={"invite_code": INVITE_INVALID})


@dataclass(frozen=True)
class NewInvite:
    """A just-created invite with its code, which is never stored."""

    record: Invite
    code: str


def create_invite(session: Session, admin: User, note: str, expires_at: datetime | None) -> NewInvite:
    """Mint a single-use invite, storing only its hash and a visible prefix."""
    minted = mint_invite_code()
    record = Invite(code_hash=minted.key_hash, prefix=minted.prefix, note=note.strip(), created_by=admin.id,
                    expires_at=expires_at)
    session.add(record)
    session.flush()
    return NewInvite(record, minted.plaintext)


def list_invites(session: Session) -> list[Invite]:
    """Every invite, newest first."""
    return list(session.scalars(select(Invite).order_by(Invite.id.desc())))


def revoke_invite(session: Session, invite_id: int) -> None:
    """Delete an unused invite; `NotFound` if there is none, `Conflict` if it was used (kept as a record)."""
    deleted = session.execute(delete(Invite).where(Invite.id == invite_id, Invite.used_at.is_(None))
                              .execution_options(synchronize_session=False))
    if deleted.rowcount == 1:
        return
    if session.get(Invite, invite_id) is None:
        raise NotFound("No such invite.")
    raise Conflict("This invite has been used; it stays on record.")


def authenticate(session: Session, email: str, password: str, passwords: PasswordHashing) -> User:
    """The user whose credentials these are.

    Unknown email and wrong password fail alike (and take as long); a deactivated account
    with the right password is told so.
    """
    user = find_user_by_email(session, email)
    if not passwords.verify(user.password_hash if user else None, password):
        raise Unauthorized(BAD_CREDENTIALS)
    if not user.is_active:
        raise Forbidden("This account is deactivated.")
    if passwords.needs_rehash(user.password_hash):
        user.password_hash = passwords.hash(password)
    return user


def authenticate_throttled(session: Session, email: str, password: str, passwords: PasswordHashing,
                           throttle: LoginThrottle, address: str) -> User:
    """`authenticate`, refusing with 429 after too many failures for the account or address."""
    wait = throttle.retry_after(email, address)
    if wait is not None:
        raise RateLimited("Too many failed logins; try again later.", retry_after=wait)
    try:
        user = authenticate(session, email, password, passwords)
    except Unauthorized:
        throttle.failed(email, address)
        raise
    throttle.succeeded(email, address)
    return user


def end_all_sessions(session: Session, user: User) -> None:
    """Invalidate every browser session and access token of `user` at once."""
    session.execute(
        update(User).where(User.id == user.id).values(session_version=User.session_version + 1)
    )
    session.refresh(user)


def change_password(
    session: Session, user: User, current: str, new: str, passwords: PasswordHashing
) -> None:
    """Replace the password after checking the current one, ending all other sessions."""
    if not passwords.verify(user.password_hash, current):
        raise Unauthorized("The current password is not correct.")
    user.password_hash = passwords.hash(new)
    end_all_sessions(session, user)


def refuse_self_lockout(actor: User, user: User, active: bool | None = None, admin: bool | None = None) -> None:
    """An admin may not deactivate themselves or drop their own admin role."""
    if actor.id == user.id and (active is False or admin is False):
        raise Forbidden("You cannot deactivate yourself or revoke your own admin role.")


def set_user_active(session: Session, user: User, active: bool) -> None:
    """Activate or deactivate `user`; deactivation ends their sessions and tokens."""
    user.is_active = active
    if not active:
        end_all_sessions(session, user)


def create_admin(session: Session, email: str, password: str, passwords: PasswordHashing,
                 balance_nano: int) -> User:
    """A new active admin account; `Conflict` if the email is taken."""
    user = register_user(session, email, password, passwords, balance_nano)
    user.is_admin = True
    return user


def ensure_admin(session: Session, email: str, password: str, passwords: PasswordHashing, balance_nano: int,
                 force: bool = False) -> tuple[User, bool]:
    """Make `email` an active admin with `password`, creating the account if absent. Returns (user, created).

    An existing account gets the password and ends every session and token it had (whoever
    held them is out). An existing non-admin is only promoted with `force`: anyone could
    have signed up with that email before the operator ran this (`Conflict` otherwise).
    """
    user = find_user_by_email(session, email)
    if user is None:
        return create_admin(session, email, password, passwords, balance_nano), True
    if not user.is_admin and not force:
        raise Conflict(f"{user.email} is an existing account that is not an admin. To make it an admin (its "
                       "password is replaced and its sessions end), run again with --force.")
    user.password_hash = passwords.hash(password)
    user.is_admin = True
    user.is_active = True
    end_all_sessions(session, user)
    return user, False


@dataclass(frozen=True)
class NewApiKey:
    """A just-created key row with its plaintext, which is never stored."""

    record: ApiKey
    plaintext: str


def create_api_key(session: Session, user: User, name: str) -> NewApiKey:
    """Mint a Vault key for `user`, storing only its hash and visible prefix."""
    minted = mint_vault_key()
    record = ApiKey(owner=user, name=name, prefix=minted.prefix, key_hash=minted.key_hash)
    session.add(record)
    session.flush()
    return NewApiKey(record, minted.plaintext)


def list_api_keys(session: Session, user: User) -> list[ApiKey]:
    """Every key of `user`, newest first, revoked ones included."""
    query = select(ApiKey).where(ApiKey.user_id == user.id).order_by(ApiKey.id.desc())
    return list(session.scalars(query))


def revoke_api_key(session: Session, user: User, key_id: int) -> ApiKey:
    """Revoke one of `user`'s keys; `NotFound` for anyone else's. Revoking twice is harmless."""
    record = session.get(ApiKey, key_id)
    if record is None or record.user_id != user.id:
        raise NotFound("No such API key.")
    if record.revoked_at is None:
        record.revoked_at = utcnow()
    return record


def find_changeable_key(session: Session, user_id: int | None, key_id: int) -> ApiKey:
    """A key whose settings may change: `NotFound` if it is not `user_id`'s (any user's with
    None), `Conflict` once revoked (a revoked key never works again; nothing of it can change)."""
    record = session.get(ApiKey, key_id)
    if record is None or (user_id is not None and record.user_id != user_id):
        raise NotFound("No such API key.")
    if record.revoked_at is not None:
        raise Conflict("This key is revoked; its settings can no longer change.")
    return record


def set_key_rate_limit(session: Session, user_id: int | None, key_id: int, per_minute: int | None) -> ApiKey:
    """Set a key's requests-per-minute limit (None: the global default; 0: none), unchecked
    against its owner's limits (`vault.policies.settings.change_key_policy` checks them).

    With `user_id`, the key must belong to that user.
    """
    record = session.get(ApiKey, key_id)
    if record is None or (user_id is not None and record.user_id != user_id):
        raise NotFound("No such API key.")
    record.rate_limit_rpm = per_minute
    return record


def find_usable_api_key(session: Session, plaintext: str) -> ApiKey | None:
    """The live key matching `plaintext`, or None if unknown or revoked."""
    record = session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_vault_key(plaintext)))
    if record is None or record.revoked_at is not None:
        return None
    return record


USER_SORTS = {
    "newest": User.id.desc(), "oldest": User.id.asc(), "email": User.email.asc(),
    "balance": User.balance_nano.desc(), "spend": User.spend_nano.desc(), "requests": User.request_count.desc(),
}


def search_users(session: Session, text: str, sort: str, page: int, per_page: int) -> tuple[list[User], int]:
    """A page of users whose email contains `text`, in `sort` order, and the total count."""
    query = select(User)
    if text.strip():
        query = query.where(User.email.contains(text.strip().lower(), autoescape=True))
    total = session.scalar(select(func.count()).select_from(query.subquery()))
    ordered = query.order_by(USER_SORTS.get(sort, USER_SORTS["newest"]), User.id.desc())
    return list(session.scalars(ordered.limit(per_page).offset((page - 1) * per_page))), int(total or 0)
