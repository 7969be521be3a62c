"""The renewal journal on SQLite and on Table Storage (Azurite over HTTPS)."""

import threading
from datetime import datetime, timedelta, timezone

import pytest
from azure.data.tables import TableServiceClient

from shared.journal import SqliteJournal, TableJournal

NOW = datetime(2027, 1, 1, tzinfo=timezone.utc)


@pytest.fixture(params=["sqlite", "table"])
def journal(request, tmp_path):
    if request.param == "sqlite":
        return SqliteJournal(str(tmp_path / "journal.sqlite3"))
    azurite = request.getfixturevalue("azurite")
    service = TableServiceClient.from_connection_string(azurite.connection_string, connection_verify=azurite.ca_bundle)
    table = service.create_table_if_not_exists(f"journal{request.node.name.__hash__() & 0xFFFFFF:x}")
    return TableJournal(table)


def test_insert_succeeds_once(journal):
    assert journal.insert("contoso-certs", "renewal~web", {"state": "claimed"})
    assert not journal.insert("contoso-certs", "renewal~web", {"state": "claimed"})


def test_replace_fails_after_another_writer(journal):
    journal.insert("contoso-certs", "renewal~web", {"state": "claimed", "owner": "a"})
    fields, etag = journal.read("contoso-certs", "renewal~web")

    journal.merge("contoso-certs", "renewal~web", {"owner": "b"})

    assert not journal.replace("contoso-certs", "renewal~web", {"state": "started"}, etag)
    assert journal.read("contoso-certs", "renewal~web")[0] == {"state": "claimed", "owner": "b"}


def test_concurrent_claims_have_one_winner(journal):
    results = []
    barrier = threading.Barrier(8)

    def claim():
        barrier.wait()
        results.append(journal.insert("contoso-certs", "renewal~api", {"state": "claimed"}))

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert results.count(True) == 1


def test_entries_filter_by_prefix_and_state(journal):
    journal.insert("contoso-certs", "renewal~a", {"state": "started"})
    journal.insert("contoso-certs", "renewal~b", {"state": "completed"})
    journal.insert("fabrikam-certs", "renewal~c", {"state": "announced"})
    journal.insert("contoso-certs", "notice~x", {"state": "started"})

    open_entries = sorted(key for _, key, _ in journal.entries("renewal~", ("started", "announced")))

    assert open_entries == ["renewal~a", "renewal~c"]


def test_history_is_newest_first_and_filters(journal):
    journal.append_history("contoso-certs", "web", "renewal-started", "due", NOW)
    journal.append_history("contoso-certs", "web", "renewed", "new version", NOW + timedelta(hours=1))
    journal.append_history("contoso-certs", "api", "expired", "expired", NOW + timedelta(hours=2))

    web = journal.history("contoso-certs", "web")

    assert [row["action"] for row in web] == ["renewed", "renewal-started"]
    assert journal.history()[0]["certificate"] == "api"


def test_history_matches_certificate_name_in_any_case(journal):
    journal.append_history("contoso-certs", "External-CA", "merged", "signed certificate merged", NOW)

    rows = journal.history("contoso-certs", "external-ca")

    assert [row["action"] for row in rows] == ["merged"]
    assert rows[0]["certificate"] == "External-CA"
