"""Identity resolution joins the records of one customer, by the strongest evidence available,
and nothing else: each ladder rung merges with its method and confidence, explicit ids override
weaker matches and split wrong merges, a person's decisions are respected, weak matches wait for
review, hub customer ids stay stable across runs, and 20k accounts resolve in seconds."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import pytest
from rapidfuzz import fuzz

from unified_model.domains import normalize_company_name
from unified_model.identity import (
    MatchConfig,
    Resolution,
    SequentialIds,
    dedupe_contacts,
    link_contacts,
    resolve_customers,
)
from unified_model.tables import Contact, MatchReview, SourceAccount, SourceLink

T0 = dt.datetime(2024, 3, 1, 12, 0, tzinfo=dt.UTC)
SF = "salesforce"
HS = "hubspot"


def sf(source_id: str, name: str | None = None, **kw: Any) -> SourceAccount:
    kw.setdefault("modified_at", T0)
    return SourceAccount(source=SF, source_id=source_id, name=name, **kw)


def hs(source_id: str, name: str | None = None, **kw: Any) -> SourceAccount:
    kw.setdefault("modified_at", T0)
    return SourceAccount(source=HS, source_id=source_id, name=name, **kw)


def contact(source: str, source_id: str, email: str | None, *accounts: str) -> Contact:
    return Contact(
        source=source,
        source_id=source_id,
        email=email,
        account_source_ids=list(accounts),
        modified_at=T0,
    )


def same(res: Resolution, a: tuple[str, str], b: tuple[str, str]) -> bool:
    return res.assignments[a].customer_id == res.assignments[b].customer_id


def review_pairs(res: Resolution) -> set[frozenset[tuple[str, str]]]:
    return {
        frozenset({(r.left_source, r.left_id), (r.right_source, r.right_id)}) for r in res.reviews
    }


# --------------------------------------------------------------------------------------------
# One test per rung
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("direction", ["hubspot_names_salesforce", "salesforce_names_hubspot"])
def test_rung1_explicit_cross_crm_id(direction: str) -> None:
    if direction == "hubspot_names_salesforce":
        accounts = [sf("001-a", "Acme"), hs("101", "Totally Different", cross_crm_id="001-a")]
    else:
        accounts = [sf("001-a", "Acme", cross_crm_id="101"), hs("101", "Totally Different")]
    res = resolve_customers(accounts)
    a, c = res.assignments[(SF, "001-a")], res.assignments[(HS, "101")]
    assert a.customer_id == c.customer_id
    assert (a.method, a.confidence, a.matched_with) == ("explicit_id", 1.0, (HS, "101"))
    assert (c.method, c.confidence) == ("explicit_id", 1.0)


def test_rung1_explicit_id_accepts_15_char_salesforce_id() -> None:
    res = resolve_customers(
        [sf("001000000000001AAA", "Acme"), hs("101", "Acme HQ", cross_crm_id="001000000000001")]
    )
    assert same(res, (SF, "001000000000001AAA"), (HS, "101"))
    assert res.assignments[(HS, "101")].method == "explicit_id"


def test_rung2_same_registrable_domain_across_crms() -> None:
    res = resolve_customers(
        [
            sf("001-a", "Acme UK", website="http://WWW.Acme.co.uk/en?x=1"),
            hs("101", "ACME Britain", domain="acme.co.uk"),
            hs("102", "Other", domain="other.co.uk"),
        ]
    )
    a = res.assignments[(SF, "001-a")]
    assert same(res, (SF, "001-a"), (HS, "101"))
    assert not same(res, (SF, "001-a"), (HS, "102"))
    assert (a.method, a.confidence) == ("domain", 0.97)
    assert res.assignments[(HS, "102")].method == "new"


def test_rung2_free_mail_and_placeholder_domains_are_no_evidence() -> None:
    res = resolve_customers(
        [
            sf("001-a", "Anna's Bakery", website="gmail.com"),
            hs("101", "Bob Plumbing", domain="gmail.com"),
            sf("001-b", "Cafe Uno", website="www.example.com"),
            hs("102", "Dental Two", domain="example.com"),
        ]
    )
    assert len(res.clusters()) == 4


def test_rung3_contact_domain_majority() -> None:
    accounts = [sf("001-a", "Acme Holding Nordics"), hs("101", "ACME", domain="acme.fi")]
    contacts = [
        contact(SF, "003-1", "anna@acme.fi", "001-a"),
        contact(SF, "003-2", "Ben@ACME.fi", "001-a"),
        contact(SF, "003-3", "carl@gmail.com", "001-a"),  # free mail: ignored
    ]
    res = resolve_customers(accounts, contacts)
    a = res.assignments[(SF, "001-a")]
    assert same(res, (SF, "001-a"), (HS, "101"))
    assert (a.method, a.confidence) == ("contact_domain", 0.9)


@pytest.mark.parametrize(
    "emails",
    [
        ["anna@acme.fi"],  # one contact is no majority
        ["anna@acme.fi", "ben@beta.fi", "carl@gamma.fi"],  # no majority
        ["anna@gmail.com", "ben@gmail.com"],  # free mail says nothing
    ],
)
def test_rung3_contact_domain_needs_a_clear_majority(emails: list[str]) -> None:
    accounts = [sf("001-a", "Acme Holding Nordics"), hs("101", "ACME", domain="acme.fi")]
    contacts = [contact(SF, f"003-{i}", e, "001-a") for i, e in enumerate(emails)]
    res = resolve_customers(accounts, contacts)
    assert not same(res, (SF, "001-a"), (HS, "101"))


def test_rung4_fuzzy_name_with_country_agreement() -> None:
    res = resolve_customers(
        [
            sf("001-a", "Nordwind Logistics GmbH", country="Germany", city="Hamburg"),
            hs("101", "Nordwind Logistic", country="DE", city="hamburg"),
        ]
    )
    expected = fuzz.token_sort_ratio(
        normalize_company_name("Nordwind Logistics GmbH"),
        normalize_company_name("Nordwind Logistic"),
    )
    a = res.assignments[(SF, "001-a")]
    assert same(res, (SF, "001-a"), (HS, "101"))
    assert a.method == "fuzzy_name"
    assert a.confidence == pytest.approx(expected / 100, abs=1e-4)
    assert a.confidence >= 0.92
    assert res.reviews == []


@pytest.mark.parametrize(
    ("sf_loc", "hs_loc", "reason_part"),
    [
        ({"country": "Germany"}, {"country": "France"}, "countries differ"),
        ({"country": "Germany"}, {}, "country unknown"),
        (
            {"country": "DE", "city": "Hamburg"},
            {"country": "DE", "city": "Berlin"},
            "cities differ",
        ),
    ],
)
def test_rung4_fuzzy_name_without_location_agreement_goes_to_review(
    sf_loc: dict[str, str], hs_loc: dict[str, str], reason_part: str
) -> None:
    res = resolve_customers(
        [sf("001-a", "Nordwind Logistics", **sf_loc), hs("101", "Nordwind Logistics", **hs_loc)],
        now=T0,
    )
    assert not same(res, (SF, "001-a"), (HS, "101"))
    (review,) = res.reviews
    assert (review.left_source, review.left_id, review.right_source, review.right_id) == (
        SF,
        "001-a",
        HS,
        "101",
    )
    assert review.status == "pending" and review.score == 100.0
    assert reason_part in review.reason
    assert review.created_at == T0


def test_rung5_near_miss_goes_to_review_not_merged() -> None:
    res = resolve_customers(
        [
            sf("001-a", "Kestrel Robotics", country="US"),
            hs("101", "Kestrel Robotic Systems", country="USA"),
        ]
    )
    assert not same(res, (SF, "001-a"), (HS, "101"))
    (review,) = res.reviews
    assert 80 <= review.score < 92
    assert "below the threshold" in review.reason


def test_typos_in_every_token_are_still_compared() -> None:
    # No token in common, so no token block holds both: the sorted-name neighbourhood does.
    res = resolve_customers(
        [
            sf("001-a", "Brightwave Analytics", country="US"),
            hs("101", "Brightway Analytica", country="US"),
            *(hs(str(200 + i), f"Zephyr Holdings {i}", country="US") for i in range(20)),
        ]
    )
    assert frozenset({(SF, "001-a"), (HS, "101")}) in review_pairs(res)


def test_a_record_gets_at_most_its_best_few_reviews() -> None:
    accounts = [sf("001-a", "Nordwind Logistics", country="DE")]
    accounts += [hs(str(100 + i), "Nordwind Logistics") for i in range(5)]  # countries unknown
    accounts.append(hs("200", "Nordwind Logistic"))
    res = resolve_customers(accounts)
    assert [r.right_id for r in res.reviews] == ["100", "101", "102"]
    assert res.stats["reviews_capped"] == 3
    unlimited = resolve_customers(accounts, config=MatchConfig(max_reviews_per_record=0))
    assert len(unlimited.reviews) == 6


def test_below_review_floor_is_neither_merged_nor_reviewed() -> None:
    res = resolve_customers(
        [sf("001-a", "Kestrel Robotics", country="US"), hs("101", "Kestrel Foods", country="US")]
    )
    assert not same(res, (SF, "001-a"), (HS, "101"))
    assert res.reviews == []


def test_thresholds_are_configurable() -> None:
    accounts = [
        sf("001-a", "Kestrel Robotics", country="US"),
        hs("101", "Kestrel Robotic Systems", country="USA"),
    ]
    res = resolve_customers(accounts, config=MatchConfig(fuzzy_threshold=80, review_floor=70))
    assert same(res, (SF, "001-a"), (HS, "101"))
    assert MatchConfig.from_dict({"fuzzy_threshold": 95}).fuzzy_threshold == 95
    with pytest.raises(ValueError, match="fuzzy_treshold"):
        MatchConfig.from_dict({"fuzzy_treshold": 95})
    with pytest.raises(ValueError, match="review_floor"):
        MatchConfig(review_floor=95, fuzzy_threshold=90)


# --------------------------------------------------------------------------------------------
# Within one CRM, ties, conflicts, overrides
# --------------------------------------------------------------------------------------------


def test_within_crm_duplicates_by_domain_are_one_customer_and_recorded() -> None:
    res = resolve_customers(
        [
            sf("001-a", "Acme", website="acme.com"),
            sf("001-b", "ACME Inc (old)", website="https://www.acme.com/about"),
            hs("101", "Acme", domain="acme.com"),
        ]
    )
    assert len(res.clusters()) == 1
    assert res.within_crm_duplicates == [((SF, "001-a"), (SF, "001-b"))]
    assert res.assignments[(SF, "001-b")].method == "domain"


def test_no_fuzzy_matching_within_one_crm_by_default() -> None:
    res = resolve_customers(
        [
            sf("001-a", "Nordwind Logistics", country="DE"),
            sf("001-b", "Nordwind Logistics", country="DE"),
        ]
    )
    assert not same(res, (SF, "001-a"), (SF, "001-b"))
    assert res.reviews == []


def test_tie_is_broken_deterministically_whatever_the_input_order() -> None:
    accounts = [
        sf("001-a", "Nordwind Logistics", country="DE"),
        hs("101", "Nordwind Logistics", country="DE"),
        hs("102", "Nordwind Logistics", country="DE"),
    ]
    # A person said the two HubSpot companies are different customers: only one can get 001-a.
    rejected = MatchReview(
        left_source=HS, left_id="101", right_source=HS, right_id="102", score=100, status="rejected"
    )
    results = []
    for seed in range(5):
        shuffled = accounts[:]
        random.Random(seed).shuffle(shuffled)
        res = resolve_customers(shuffled, decisions=[rejected])
        results.append({k: a.customer_id for k, a in res.assignments.items()})
    assert all(r == results[0] for r in results)
    res = resolve_customers(accounts, decisions=[rejected])
    assert same(res, (SF, "001-a"), (HS, "101"))  # lower id wins the tie
    assert not same(res, (HS, "101"), (HS, "102"))


@pytest.mark.parametrize(("a_id", "b_id"), [("001-a", "001-b"), ("001-z", "001-b")])
def test_explicit_id_splits_an_earlier_fuzzy_merge(a_id: str, b_id: str) -> None:
    accounts = [
        sf(a_id, "Acme Ltd", country="GB"),
        sf(b_id, "Acme Holdings UK", country="GB"),
        hs("101", "ACME Limited", country="United Kingdom"),
    ]
    first = resolve_customers(accounts, now=T0)
    assert same(first, (SF, a_id), (HS, "101"))
    assert first.assignments[(HS, "101")].method == "fuzzy_name"

    # The HubSpot-Salesforce integration now links the company to the other account.
    accounts[2] = hs("101", "ACME Limited", country="United Kingdom", cross_crm_id=b_id)
    second = resolve_customers(accounts, existing_links=first.links(T0))
    moved = second.assignments[(HS, "101")]
    assert same(second, (HS, "101"), (SF, b_id))
    assert not same(second, (HS, "101"), (SF, a_id))
    assert (moved.method, moved.matched_with) == ("explicit_id", (SF, b_id))
    # Ids stay: 001-a keeps the id it had alone, 001-b's customer keeps 001-b's id.
    assert second.customer_id(SF, a_id) == first.customer_id(SF, a_id)
    assert second.customer_id(SF, b_id) == first.customer_id(SF, b_id)
    assert second.new_ids == []


def test_conflicting_explicit_ids_resolve_deterministically() -> None:
    # 001-a names company 101, but 101 names account 001-b: 101's claim about itself wins.
    accounts = [
        sf("001-a", "Alpha", cross_crm_id="101"),
        sf("001-b", "Beta", cross_crm_id="101"),
        hs("101", "Beta", cross_crm_id="001-b"),
    ]
    outcomes = set()
    for seed in range(4):
        shuffled = accounts[:]
        random.Random(seed).shuffle(shuffled)
        res = resolve_customers(shuffled)
        outcomes.add(tuple(sorted(res.account_assignment.items())))
        assert same(res, (SF, "001-b"), (HS, "101"))
        assert not same(res, (SF, "001-a"), (HS, "101"))
        assert res.assignments[(SF, "001-a")].method == "new"
        (review,) = res.reviews
        assert "explicit id conflict" in review.reason
        assert (review.left_id, review.right_id) == ("001-a", "101")
        assert res.stats["explicit_conflicts"] == 1
    assert len(outcomes) == 1


def test_many_hubspot_companies_naming_one_account_join_it() -> None:
    res = resolve_customers(
        [
            sf("001-a", "Acme"),
            hs("101", "Acme", cross_crm_id="001-a"),
            hs("102", "Acme (marketing copy)", cross_crm_id="001-a"),
            hs("103", "Dangling", cross_crm_id="001-deleted"),
        ]
    )
    assert same(res, (SF, "001-a"), (HS, "101")) and same(res, (SF, "001-a"), (HS, "102"))
    assert res.assignments[(HS, "103")].method == "new"
    assert res.stats["explicit_dangling"] == 1


def test_customers_anchored_by_different_explicit_ids_are_not_merged_by_domain() -> None:
    res = resolve_customers(
        [
            sf("001-us", "Acme US", website="acme.com"),
            hs("101", "Acme US", domain="acme.com", cross_crm_id="001-us"),
            sf("001-de", "Acme DE", website="acme.com"),
            hs("102", "Acme DE", domain="acme.com", cross_crm_id="001-de"),
        ]
    )
    assert same(res, (SF, "001-us"), (HS, "101")) and same(res, (SF, "001-de"), (HS, "102"))
    assert not same(res, (SF, "001-us"), (SF, "001-de"))
    assert res.reviews and all("explicit ids" in r.reason for r in res.reviews)


def test_domain_still_adds_a_duplicate_to_an_explicitly_linked_customer() -> None:
    res = resolve_customers(
        [
            sf("001-a", "Acme", website="acme.com", cross_crm_id="101"),
            hs("101", "Acme", cross_crm_id="001-a"),
            hs("102", "acme.com", domain="acme.com"),  # created by marketing from emails
        ]
    )
    assert len(res.clusters()) == 1
    assert res.assignments[(HS, "102")].method == "domain"


def test_deleted_and_repeated_rows_are_handled() -> None:
    old = sf("001-a", "Acme", website="acme.com", modified_at=T0 - dt.timedelta(days=1))
    new = sf("001-a", "Acme", website="acme.org", modified_at=T0)
    gone = hs("101", "Acme", domain="acme.com", deleted=True)
    res = resolve_customers([old, gone, new, hs("102", "Beta", domain="acme.org")])
    assert (HS, "101") not in res.assignments
    assert same(res, (SF, "001-a"), (HS, "102"))


# --------------------------------------------------------------------------------------------
# Group domains, conflicting websites, name chains
# --------------------------------------------------------------------------------------------


def _group_and_subsidiary() -> list[SourceAccount]:
    """A group and its Danish subsidiary, both on the group's website, each in both CRMs."""
    return [
        sf("001-g", "Truegate Holding GmbH", website="truegate-holding.com", country="Germany"),
        hs("101", "Truegate Holding", domain="truegate-holding.com", country="DE"),
        sf("001-s", "Truegate Danmark ApS", website="https://www.truegate-holding.com/dk/",
           country="Denmark"),
        hs("102", "Truegate Danmark", domain="truegate-holding.com", country="Danmark"),
    ]  # fmt: skip


def test_a_domain_shared_across_countries_joins_records_per_country() -> None:
    res = resolve_customers(_group_and_subsidiary(), now=T0)
    assert same(res, (SF, "001-g"), (HS, "101")) and same(res, (SF, "001-s"), (HS, "102"))
    assert not same(res, (SF, "001-g"), (SF, "001-s"))
    assert res.assignments[(HS, "102")].method == "domain"
    assert res.within_crm_duplicates == []
    (review,) = res.reviews  # one question per pair of customers, not one per record pair
    assert "countries differ (de / dk)" in review.reason and "subsidiary" in review.reason
    assert res.stats["shared_domains_split_by_country"] == 1


def test_a_shared_domain_still_joins_across_countries_when_the_names_agree() -> None:
    res = resolve_customers(
        [
            sf("001-a", "Acme Inc.", website="acme.com", country="US"),
            hs("101", "ACME", domain="acme.com", country="Canada"),
            hs("102", "Acme", domain="acme.com"),  # no country: joins where its name fits
        ]
    )
    assert len(res.clusters()) == 1


def test_a_record_without_country_on_a_group_domain_waits_for_review() -> None:
    accounts = [*_group_and_subsidiary(), hs("103", "Events Team", domain="truegate-holding.com")]
    res = resolve_customers(accounts)
    assert len(res.clusters()) == 3
    assert any(
        (r.right_id == "103" or r.left_id == "103") and "country unknown" in r.reason
        for r in res.reviews
    )


def test_contact_domain_respects_countries_on_a_group_domain() -> None:
    accounts = [
        sf("001-g", "Truegate Holding GmbH", website="truegate-holding.com", country="DE"),
        hs("102", "Truegate Danmark", country="DK"),  # no website; its people reveal the domain
    ]
    contacts = [
        contact(HS, "201", "anna@dk.truegate-holding.com", "102"),
        contact(HS, "202", "bo@dk.truegate-holding.com", "102"),
    ]
    res = resolve_customers(accounts, contacts)
    assert not same(res, (SF, "001-g"), (HS, "102"))
    (review,) = res.reviews
    assert review.reason.startswith("contacts work at truegate-holding.com")


def test_splitting_a_group_domain_by_country_can_be_switched_off() -> None:
    config = MatchConfig(split_shared_domain_by_country=False)
    res = resolve_customers(_group_and_subsidiary(), config=config)
    assert len(res.clusters()) == 1


def test_different_company_websites_veto_a_similar_name() -> None:
    accounts = [
        sf("001-a", "Alpenway Networks SA", website="alpenway-networks.fr", country="France"),
        hs("101", "Alpenbay Networks SAS", domain="alpenbaynetworks.fr", country="FR"),
    ]
    assert fuzz.token_sort_ratio("alpenway networks", "alpenbay networks") >= 92
    res = resolve_customers(accounts)
    assert not same(res, (SF, "001-a"), (HS, "101"))
    (review,) = res.reviews
    assert "domains differ (alpenway-networks.fr / alpenbaynetworks.fr)" in review.reason
    assert res.stats["fuzzy_blocked_by_domains"] == 1
    off = resolve_customers(accounts, config=MatchConfig(domain_conflict_blocks_fuzzy=False))
    assert same(off, (SF, "001-a"), (HS, "101"))


def test_country_sites_of_one_brand_do_not_veto_a_name_match() -> None:
    res = resolve_customers(
        [
            sf("001-a", "Nordwind Logistics GmbH", website="nordwind.de", country="DE"),
            hs("101", "Nordwind Logistics", domain="nordwind.com", country="Germany"),
        ]
    )
    assert same(res, (SF, "001-a"), (HS, "101"))
    assert res.assignments[(HS, "101")].method == "fuzzy_name"


def test_a_name_never_chains_two_records_of_one_crm() -> None:
    # Each company is in both CRMs under its exact name; the near miss across them (94) would
    # otherwise merge all four records into one customer.
    accounts = [
        sf("001-a", "Alpenway Networks SA", country="FR", city="Paris"),
        hs("101", "Alpenway Networks", country="FR", city="Paris"),
        sf("001-b", "Alpenbay Networks SAS", country="FR", city="Paris"),
        hs("102", "Alpenbay Networks SAS", country="FR", city="Paris"),
    ]
    res = resolve_customers(accounts)
    assert same(res, (SF, "001-a"), (HS, "101")) and same(res, (SF, "001-b"), (HS, "102"))
    assert not same(res, (SF, "001-a"), (SF, "001-b"))
    assert res.within_crm_duplicates == []
    assert all("already have a" in r.reason for r in res.reviews) and res.reviews
    assert res.stats["fuzzy_blocked_by_same_crm"] >= 1


def test_the_domain_an_accounts_people_work_at_vetoes_a_name_match_like_a_website() -> None:
    accounts = [
        sf("001-a", "Sudworks Services LLC", country="US", city="New York"),  # no website
        hs("101", "Sunworks Services Corp.", domain="sunworksservices.com", country="US",
           city="New York"),
    ]  # fmt: skip
    people = [
        contact(SF, "003-1", "anna@sudworksservices.com", "001-a"),
        contact(SF, "003-2", "ben@sudworksservices.com", "001-a"),
    ]
    assert not same(resolve_customers(accounts, people), (SF, "001-a"), (HS, "101"))
    assert same(resolve_customers(accounts), (SF, "001-a"), (HS, "101"))  # the name alone


def test_names_with_too_much_against_them_are_dismissed_not_queued() -> None:
    accounts = [
        # A near miss (86) in another city: two companies.
        sf("001-a", "Nordcore Analytics GmbH", country="DE", city="Berlin"),
        hs("101", "Polarcore Analytics GmbH", country="DE", city="Frankfurt am Main"),
        # An exact name in another country *and* on another brand's website: two companies.
        sf("001-b", "Stoneworks & Co. GmbH", website="stoneworksco.de", country="DE"),
        hs("102", "Stoneworks", domain="stoneworks.com", country="US"),
        # An exact name in another country, nothing else known: a person decides.
        sf("001-c", "Falconware Inc.", country="US"),
        hs("103", "Falconware Group", country="DK"),
        # A near miss with nothing against it (the country is unknown): a person decides.
        sf("001-d", "Kestrel Robotics", country="US"),
        hs("104", "Kestrel Robotic Systems"),
    ]
    res = resolve_customers(accounts)
    assert len(res.clusters()) == 8
    assert review_pairs(res) == {
        frozenset({(SF, "001-c"), (HS, "103")}),
        frozenset({(SF, "001-d"), (HS, "104")}),
    }
    assert res.stats["contradicted_names_dismissed"] == 2
    everything = resolve_customers(accounts, config=MatchConfig(review_contradicted_names=True))
    assert len(everything.reviews) == 4


@pytest.mark.parametrize(
    ("sf_city", "hs_city"),
    [("München", "Munich"), ("Düsseldorf", "Duesseldorf"), ("Den Haag", "The Hague")],
)
def test_city_spellings_do_not_block_a_name_match(sf_city: str, hs_city: str) -> None:
    res = resolve_customers(
        [
            sf("001-a", "Starwind AG", country="Germany", city=sf_city),
            hs("101", "Starwind AG ", country="DE", city=hs_city),
        ]
    )
    assert same(res, (SF, "001-a"), (HS, "101"))
    assert res.reviews == []


# --------------------------------------------------------------------------------------------
# A person's decisions
# --------------------------------------------------------------------------------------------


def test_rejected_pair_is_never_merged_even_through_others() -> None:
    accounts = [
        sf("001-a", "Acme", website="acme.com"),
        hs("101", "Acme", domain="acme.com"),
        hs("102", "Acme Europe", domain="acme.com"),
    ]
    rejected = MatchReview(
        left_source=SF,
        left_id="001-a",
        right_source=HS,
        right_id="101",
        score=97,
        status="rejected",
    )
    res = resolve_customers(accounts, decisions=[rejected])
    assert not same(res, (SF, "001-a"), (HS, "101"))
    assert frozenset({(SF, "001-a"), (HS, "101")}) not in review_pairs(res)
    assert res.stats["skipped_rejected"] >= 1


def test_rejected_pair_beats_an_explicit_id() -> None:
    rejected = MatchReview(
        left_source=HS, left_id="101", right_source=SF, right_id="001-a", score=0, status="rejected"
    )
    res = resolve_customers(
        [sf("001-a", "Acme"), hs("101", "Acme", cross_crm_id="001-a")], decisions=[rejected]
    )
    assert not same(res, (SF, "001-a"), (HS, "101"))


def test_confirmed_pair_is_merged_manually_and_pending_ones_are_ignored() -> None:
    confirmed = MatchReview(
        left_source=SF,
        left_id="001-a",
        right_source=HS,
        right_id="101",
        score=60,
        status="confirmed",
    )
    pending = MatchReview(
        left_source=SF, left_id="001-b", right_source=HS, right_id="102", score=85, status="pending"
    )
    res = resolve_customers(
        [sf("001-a", "Alpha Oy"), hs("101", "Old name of Alpha"), sf("001-b", "B"), hs("102", "C")],
        decisions=[confirmed, pending],
    )
    a = res.assignments[(SF, "001-a")]
    assert (a.customer_id, a.method, a.confidence) == (res.customer_id(HS, "101"), "manual", 1.0)
    assert not same(res, (SF, "001-b"), (HS, "102"))


def test_decided_pairs_are_not_raised_again_for_review() -> None:
    accounts = [
        sf("001-a", "Kestrel Robotics", country="US"),
        hs("101", "Kestrel Robotic Systems", country="US"),
    ]
    assert len(resolve_customers(accounts).reviews) == 1
    rejected = MatchReview(
        left_source=SF,
        left_id="001-a",
        right_source=HS,
        right_id="101",
        score=82,
        status="rejected",
    )
    assert resolve_customers(accounts, decisions=[rejected]).reviews == []


# --------------------------------------------------------------------------------------------
# Stable hub customer ids
# --------------------------------------------------------------------------------------------


def test_ids_are_stable_across_runs_and_new_ones_continue_the_sequence() -> None:
    accounts = [
        sf("001-a", "Acme", website="acme.com"),
        hs("101", "Acme", domain="acme.com"),
        sf("001-b", "Beta", website="beta.com"),
    ]
    first = resolve_customers(accounts, now=T0)
    assert sorted(first.clusters()) == ["HUB-0000001", "HUB-0000002"]

    later = [*reversed(accounts), hs("102", "Gamma", domain="gamma.com")]
    second = resolve_customers(later, existing_links=first.links(T0))
    for key in first.assignments:
        assert second.assignments[key].customer_id == first.assignments[key].customer_id
    assert second.customer_id(HS, "102") == "HUB-0000003"
    assert second.new_ids == ["HUB-0000003"]


def test_merging_clusters_keeps_the_majority_id_and_retires_the_other() -> None:
    links = [
        SourceLink(source=SF, object_type="account", source_id="001-a", customer_id="HUB-0000007",
                   match_method="domain", matched_at=T0),
        SourceLink(source=SF, object_type="account", source_id="001-b", customer_id="HUB-0000007",
                   match_method="domain", matched_at=T0),
        SourceLink(source=HS, object_type="account", source_id="101", customer_id="HUB-0000003",
                   match_method="new", matched_at=T0 + dt.timedelta(days=1)),
    ]  # fmt: skip
    accounts = [
        sf("001-a", "Acme", website="acme.com"),
        sf("001-b", "Acme", website="acme.com"),
        hs("101", "Acme", domain="acme.com"),
    ]
    res = resolve_customers(accounts, existing_links=links)
    assert set(res.account_assignment.values()) == {"HUB-0000007"}
    assert res.retired_ids == {"HUB-0000003": "HUB-0000007"}
    # One each: the oldest id wins the tie.
    res = resolve_customers(accounts[1:], existing_links=links[1:])
    assert set(res.account_assignment.values()) == {"HUB-0000007"}


def test_when_a_cluster_splits_the_larger_part_keeps_the_id() -> None:
    links = [
        SourceLink(source=s, object_type="account", source_id=i, customer_id="HUB-0000001",
                   match_method="domain", matched_at=T0)
        for s, i in [(SF, "001-a"), (HS, "101"), (HS, "102")]
    ]  # fmt: skip
    accounts = [
        sf("001-a", "Acme", website="acme.com"),
        hs("101", "Acme", domain="acme.com"),
        hs("102", "Zeta", domain="zeta.com"),  # its domain changed: no longer Acme
    ]
    res = resolve_customers(accounts, existing_links=links)
    assert res.customer_id(SF, "001-a") == res.customer_id(HS, "101") == "HUB-0000001"
    assert res.customer_id(HS, "102") == "HUB-0000002"


def test_a_part_that_was_wholly_one_customer_keeps_its_id_on_a_split() -> None:
    links = [
        SourceLink(source=SF, object_type="account", source_id="001-z", customer_id="HUB-0000001",
                   match_method="fuzzy_name", matched_at=T0),
        SourceLink(source=HS, object_type="account", source_id="101", customer_id="HUB-0000001",
                   match_method="fuzzy_name", matched_at=T0),
        SourceLink(source=SF, object_type="account", source_id="001-b", customer_id="HUB-0000002",
                   match_method="new", matched_at=T0),
    ]  # fmt: skip
    accounts = [
        sf("001-z", "Acme Ltd", country="GB"),
        sf("001-b", "Acme Holdings UK", country="GB"),
        hs("101", "ACME Limited", country="GB", cross_crm_id="001-b"),
    ]
    res = resolve_customers(accounts, existing_links=links)
    # 101 left HUB-0000001 for 001-b's customer; 001-z alone is all that is left of HUB-0000001.
    assert res.customer_id(SF, "001-z") == "HUB-0000001"
    assert res.customer_id(SF, "001-b") == res.customer_id(HS, "101") == "HUB-0000002"
    assert res.new_ids == [] and res.retired_ids == {}


def test_id_factory_is_injectable() -> None:
    ids = iter(["CUST-A", "CUST-B"])
    res = resolve_customers([sf("001-a", "Acme"), hs("101", "Beta")], id_factory=lambda: next(ids))
    assert sorted(res.clusters()) == ["CUST-A", "CUST-B"]
    factory = SequentialIds.after(["HUB-0000041", "HUB-9", "OTHER-99999"])
    assert factory() == "HUB-0000042"


def test_links_carry_method_and_confidence_and_keep_when_they_were_made() -> None:
    accounts = [
        sf("001-a", "Acme", website="acme.com"),
        hs("101", "Acme", domain="acme.com"),
        sf("001-b", "Beta", website="beta.com"),
    ]
    links = {(x.source, x.source_id): x for x in resolve_customers(accounts).links(T0)}
    assert links[(SF, "001-a")].object_type == "account"
    assert (links[(HS, "101")].match_method, links[(HS, "101")].confidence) == ("domain", 0.97)
    assert links[(HS, "101")].matched_at == T0

    later = T0 + dt.timedelta(days=3)
    accounts[1] = hs("101", "Acme", domain="acme.org")  # no longer matches
    moved = resolve_customers(accounts, existing_links=links.values())
    again = {(x.source, x.source_id): x for x in moved.links(later, previous=links.values())}
    assert again[(SF, "001-b")].matched_at == T0  # unchanged: keeps its time
    assert (again[(HS, "101")].match_method, again[(HS, "101")].matched_at) == ("new", later)
    assert again[(SF, "001-a")].customer_id == links[(SF, "001-a")].customer_id


# --------------------------------------------------------------------------------------------
# Contacts
# --------------------------------------------------------------------------------------------


def test_link_contacts_by_account_then_by_work_domain() -> None:
    accounts = [
        sf("001-a", "Acme", website="acme.com"),
        hs("101", "Acme", domain="acme.com"),
        sf("001-b", "Beta", website="beta.com"),
        sf("001-c", "Beta Germany", website="beta.com"),
    ]
    res = resolve_customers(accounts)
    contacts = [
        contact(SF, "003-1", "anna@acme.com", "001-gone", "001-a"),  # first *known* account
        contact(HS, "201", "ben@acme.com"),  # no company: work domain → Acme
        contact(SF, "00Q-1", "carl@gmail.com"),  # lead with free mail: unknown
        contact(SF, "00Q-2", "dora@nowhere.org"),  # unknown domain
        contact(HS, "202", "eve@beta.com", "101"),
    ]
    linked = link_contacts(contacts, res, accounts=accounts)
    acme = res.customer_id(SF, "001-a")
    assert linked[(SF, "003-1")] == acme
    assert linked[(HS, "201")] == acme
    assert linked[(HS, "202")] == acme  # its company decides, not its email
    assert (SF, "00Q-1") not in linked and (SF, "00Q-2") not in linked


def test_link_contacts_leaves_ambiguous_domains_unassigned() -> None:
    assignment = {(SF, "001-a"): "HUB-1", (SF, "001-b"): "HUB-2"}
    contacts = [
        contact(SF, "003-1", "anna@acme.com", "001-a"),
        contact(SF, "003-2", "ben@acme.com", "001-b"),
        contact(SF, "00Q-1", "carl@acme.com"),
    ]
    linked = link_contacts(contacts, assignment)
    assert linked == {(SF, "003-1"): "HUB-1", (SF, "003-2"): "HUB-2"}


def test_dedupe_contacts_by_normalized_email() -> None:
    contacts = [
        contact(SF, "003-1", "Jane.Doe@Acme.com"),
        contact(HS, "201", " jane.doe@acme.com "),
        contact(SF, "00Q-1", "Jane Doe <JANE.DOE@acme.com>"),
        contact(HS, "202", "john@acme.com"),
        contact(HS, "203", None),
        contact(HS, "204", "not an email"),
    ]
    keys = dedupe_contacts(contacts)
    assert keys[(SF, "003-1")] == keys[(HS, "201")] == keys[(SF, "00Q-1")]
    assert keys[(HS, "202")] != keys[(SF, "003-1")]
    assert keys[(HS, "203")] == "hubspot:203" and keys[(HS, "204")] == "hubspot:204"
    assert "jane" not in keys[(SF, "003-1")]


# --------------------------------------------------------------------------------------------
# Scale
# --------------------------------------------------------------------------------------------


def _synthetic_accounts(customers: int, seed: int = 11) -> list[SourceAccount]:
    """Two CRMs' views of ``customers`` companies: shared names, some domains, legal forms."""
    rng = random.Random(seed)
    syllables = [
        "ka",
        "lo",
        "mi",
        "ra",
        "ten",
        "vo",
        "qui",
        "zen",
        "bar",
        "tor",
        "nex",
        "lum",
        "pha",
        "dri",
        "sol",
        "gar",
        "vin",
        "cor",
        "bel",
        "tan",
    ]
    forms = ["GmbH", "Inc.", "Ltd", "AB", "Oy", "S.A.", ""]
    countries = ["DE", "US", "GB", "FI", "SE", "FR"]

    def word() -> str:
        return "".join(rng.choice(syllables) for _ in range(rng.randint(2, 4))).capitalize()

    out = []
    for i in range(customers):
        name = f"{word()} {word()}"
        country = rng.choice(countries)
        domain = f"{name.split()[0].lower()}{i}.com"
        out.append(
            sf(f"001{i:015d}", f"{name} {rng.choice(forms)}", country=country,
               website=f"https://www.{domain}/" if i % 2 else None)
        )  # fmt: skip
        out.append(
            hs(str(10_000 + i), name, country=country, domain=domain if i % 3 else None,
               cross_crm_id=f"001{i:015d}" if i % 7 == 0 else None)
        )  # fmt: skip
    return out


def test_synthetic_accounts_pair_up_across_the_crms() -> None:
    """Correctness at a few thousand accounts; its speed is measured in
    ``benchmarks/unify_scale.py`` (100,000 customers), not timed here."""
    accounts = _synthetic_accounts(2_000)
    res = resolve_customers(accounts)
    assert len(res.assignments) == 4_000
    # Nearly every synthetic customer is found in both CRMs (random names rarely collide).
    assert 1_980 <= len(res.clusters()) <= 2_020
    # every explicit pair (every seventh customer) is one customer
    for i in range(0, 2_000, 7):
        assert res.customer_id("salesforce", f"001{i:015d}") == res.customer_id(
            "hubspot", str(10_000 + i)
        )
