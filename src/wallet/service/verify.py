"""The ledger audit: prove that the books balance, or say exactly where they do not.

``verify_ledger`` reads one consistent snapshot of the ledger and checks, with set-based SQL
(wallet.storage.audit), that:
- every account's stored balance is the sum of its entries;
- every entry's balance_after is its balance_before plus its amount, and each account's entries
  chain in id order: the first starts from zero, every later one where the one before it ended;
- every transaction has at least two entries, and they sum to zero;
- no account but an asset's issuance account is below zero;
- for each asset, the accounts other than issuance hold exactly the supply, and the issuance
  account holds minus the supply;
- no entry lacks its transaction;
- every transaction made since the oldest event kept has exactly one ``transaction.created``
  event, every such event names a transaction, and the events' positions have no gap;
- lots (service/lots.py): every account's ``lots_open_minor`` is the sum of what is left of its
  open lots, and that is at most its balance; every lot's ``remaining`` is its amount less what
  its draws kept (drawn less given back), and the lot is its credit's (a top-up or bonus of the
  same amount, to the lot's account); every ``expiry`` transaction drew from one or more lots of
  its user's account that were due when it was made (one draw per lot), together the amount its
  user's entry took, and nothing of it went back.

Lots whose expiry has passed and that still have something left are not a problem of the books:
they are what the expiry sweep has yet to do (the service may have been stopped, and ``wallet
verify`` runs without it), and their credit is still in the balance, which is right until the
sweep moves it. The audit does not report them.

The schema enforces all of this already; the audit checks it a second time, from the data alone,
so that a bug, a manual fix or a restored backup cannot leave the books wrong unnoticed.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from wallet.domain.money import format_minor
from wallet.limits import VERIFY_PROBLEMS_PER_CHECK_MAX, VERIFY_STATEMENT_TIMEOUT_MS
from wallet.storage import Database, Session, audit
from wallet.storage import ledger as store
from wallet.storage.database import read_snapshot

Finding = TypeVar("Finding")


@dataclass(frozen=True)
class VerifyReport:
    ok: bool
    accounts_checked: int
    transactions_checked: int
    problems: list[str]

    def verdict(self) -> str:
        """The verdict as `wallet verify` prints it."""
        checked = f"{self.accounts_checked} accounts and {self.transactions_checked} transactions"
        if self.ok:
            return f"The books balance: {checked} checked."
        lines = [f"The books do NOT balance: {len(self.problems)} problems in {checked}:"]
        lines.extend(f"  - {problem}" for problem in self.problems)
        return "\n".join(lines)


def verify_ledger(database: Database) -> VerifyReport:
    """Check every invariant of the ledger in one consistent read. Raises Unavailable."""
    with database.reading() as session, read_snapshot(session, VERIFY_STATEMENT_TIMEOUT_MS):
        counts = audit.counts(session)
        money = _Money({asset.code: asset.scale for asset in store.list_assets(session)})
        problems = [
            *_listed(session, audit.balances_off_their_entries, money.balance_off, "accounts"),
            *_listed(session, audit.broken_entry_links, money.broken_link, "entries"),
            *_listed(session, audit.unbalanced_transactions, money.unbalanced, "transactions"),
            *_listed(session, audit.negative_accounts, money.negative, "negative accounts"),
            *_listed(session, audit.orphan_entries, _orphan, "orphan entries"),
            *_listed(session, audit.metadata_mismatches, _mismatch, "metadata index rows"),
            *_listed(session, audit.event_mismatches, _event_mismatch, "events"),
            *_listed(session, audit.accounts_off_their_lots, money.lots_off, "accounts' lots"),
            *_listed(session, audit.lots_off_their_draws, money.lot_off, "lots"),
            *_listed(session, audit.expiries_off_their_lots, money.expiry_off, "expiries"),
            *money.supplies_off(audit.asset_supplies(session)),
        ]
    return VerifyReport(
        ok=not problems,
        accounts_checked=counts.accounts,
        transactions_checked=counts.transactions,
        problems=problems,
    )


def _listed(
    session: Session,
    find: Callable[[Session, int], Sequence[Finding]],
    describe: Callable[[Finding], str],
    kind: str,
) -> list[str]:
    """Describe the findings of one check, at most VERIFY_PROBLEMS_PER_CHECK_MAX of them."""
    findings = find(session, VERIFY_PROBLEMS_PER_CHECK_MAX + 1)
    problems = [describe(finding) for finding in findings[:VERIFY_PROBLEMS_PER_CHECK_MAX]]
    if len(findings) > VERIFY_PROBLEMS_PER_CHECK_MAX:
        problems.append(f"more {kind} are wrong than the {VERIFY_PROBLEMS_PER_CHECK_MAX} listed")
    return problems


class _Money:
    """Describes findings with amounts printed in their asset's scale."""

    def __init__(self, scales: dict[str, int]) -> None:
        self._scales = scales

    def _amount(self, minor: int, asset_code: str) -> str:
        # An account in an unknown asset is impossible (a foreign key), so print minor units.
        return f"{format_minor(minor, self._scales.get(asset_code, 0))} {asset_code}"

    def balance_off(self, account: audit.AccountBalance) -> str:
        assert account.entries_sum_minor is not None
        code = account.asset_code
        return (
            f"account {_label(account)}: stored balance {self._amount(account.balance_minor, code)}"
            f" is not the sum of its entries, {self._amount(account.entries_sum_minor, code)}"
        )

    def broken_link(self, entry: audit.EntryLink) -> str:
        code = entry.asset_code
        where = (
            f"entry {entry.entry_id} of account {_label(entry)}, transaction {entry.transaction_id}"
        )
        before = self._amount(entry.balance_before, code)
        if entry.balance_after != entry.balance_before + entry.amount_minor:
            return (
                f"{where}: balance_after {self._amount(entry.balance_after, code)} is not"
                f" balance_before {before} plus the amount {self._amount(entry.amount_minor, code)}"
            )
        if entry.previous_balance_after is None:
            return f"{where}: the account's first entry starts from {before}, not from zero"
        previous = self._amount(entry.previous_balance_after, code)
        return (
            f"{where}: starts from {before}, but the account's previous entry ended at {previous}"
        )

    def unbalanced(self, transaction: audit.TransactionSum) -> str:
        total = self._amount(transaction.entries_sum_minor, transaction.asset_code)
        count = transaction.entry_count
        entries = "1 entry" if count == 1 else f"{count} entries"
        return (
            f"transaction {transaction.transaction_id}: {entries} summing to {total};"
            " a transaction needs at least 2 entries that sum to zero"
        )

    def negative(self, account: audit.AccountBalance) -> str:
        balance = self._amount(account.balance_minor, account.asset_code)
        return f"account {_label(account)}: balance {balance} is below zero"

    def lots_off(self, account: audit.AccountLots) -> str:
        code = account.asset_code
        where = f"account {_label(account)}"
        open_lots = self._amount(account.open_lots_minor, code)
        if account.lots_open_minor != account.open_lots_minor:
            recorded = self._amount(account.lots_open_minor, code)
            return (
                f"{where}: lots_open_minor {recorded} is not the sum of its open lots, {open_lots}"
            )
        if account.lots_made != account.lots:
            return (
                f"{where}: lots_made {account.lots_made} is not its number of lots, {account.lots}"
            )
        balance = self._amount(account.balance_minor, code)
        return f"{where}: its open lots, {open_lots}, exceed its balance, {balance}"

    def lot_off(self, lot: audit.LotOff) -> str:
        where = f"lot {lot.lot_id} (credit {lot.transaction_id})"
        if not lot.credit_matches:
            return f"{where}: is not a top-up or bonus of its amount to its account"
        return (
            f"{where}: {lot.remaining_minor} left (minor units), but its amount"
            f" {lot.amount_minor} less what its draws kept ({lot.kept_minor}) is"
            f" {lot.amount_minor - lot.kept_minor}"
        )

    def expiry_off(self, expiry: audit.ExpiryOff) -> str:
        return (
            f"expiry {expiry.transaction_id}: {expiry.draws} draws of {expiry.drawn_minor}"
            f" (minor units, {expiry.returned_minor} given back, {expiry.lots_elsewhere} from"
            f" another account's lots, {expiry.lots_not_due} from lots not yet due), but its"
            f" user's entry took {expiry.entry_minor};"
            " an expiry takes what is left of its user's due lots, once"
        )

    def supplies_off(self, supplies: list[audit.AssetSupply]) -> list[str]:
        problems = []
        for supply in supplies:
            code = supply.asset_code
            if supply.held_minor != supply.supply_minor:
                problems.append(
                    f"asset {code}: the accounts other than issuance hold"
                    f" {self._amount(supply.held_minor, code)},"
                    f" but the supply is {self._amount(supply.supply_minor, code)}"
                )
            if supply.issuance_minor != -supply.supply_minor:
                problems.append(
                    f"asset {code}: the issuance account is at"
                    f" {self._amount(supply.issuance_minor, code)},"
                    f" not minus the supply, {self._amount(-supply.supply_minor, code)}"
                )
        return problems


def _label(account: audit.AccountBalance | audit.EntryLink | audit.AccountLots) -> str:
    return f"{account.owner_type}:{account.owner_id} {account.asset_code}"


def _orphan(entry: audit.OrphanEntry) -> str:
    return f"entry {entry.entry_id}: its transaction {entry.transaction_id} does not exist"


def _mismatch(found: audit.MetadataMismatch) -> str:
    member = f"{found.key}={found.value!r}"
    if found.in_transaction:
        return f"transaction {found.transaction_id}: {member} is missing from the metadata index"
    return f"metadata index row seq {found.seq}: {member} is not in its transaction's metadata"


def _event_mismatch(found: audit.EventMismatch) -> str:
    if found.what == "missing":
        return f"transaction {found.subject}: no transaction.created event"
    if found.what == "orphan":
        return (
            f"a transaction.created event names transaction {found.subject}, which does not exist"
        )
    if found.what == "doubled":
        return f"transaction {found.subject}: more than one transaction.created event"
    return f"event positions have a gap: {found.subject}"
