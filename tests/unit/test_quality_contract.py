"""The data-quality contract (schemas.quality) is the one definition: the database's
quarantine table and the summary agree with it."""

import re
from pathlib import Path

from monitoring import summary
from schemas import quality

MIGRATIONS = Path(__file__).resolve().parents[2] / "db" / "migrations"


def test_the_quarantine_table_accepts_exactly_the_contracts_categories():
    sql = (MIGRATIONS / "003_quarantine_ledger.sql").read_text()
    allowed = re.search(r"category\s+text\s+NOT NULL CHECK \(category IN \(([^)]*)\)\)", sql).group(1)
    assert tuple(v.strip().strip("'") for v in allowed.split(",")) == quality.CATEGORIES


def test_every_rule_belongs_to_one_category_and_the_summary_counts_those_categories():
    for category, families in quality.RULES.items():
        for rules in families.values():
            assert all(quality.category_of(rule) == category for rule in rules)
    assert set(quality.RULES) == set(quality.CATEGORIES) == set(summary.CATEGORIES)


def test_the_producers_bad_data_mix_has_a_share_per_category_of_the_contract():
    from producers.options import NO_FAULTS, FaultRatios

    assert tuple(FaultRatios().as_dict()) == quality.CATEGORIES
    assert NO_FAULTS.total() == 0 and FaultRatios().total() > 0


def test_the_stream_options_name_the_contracts_quantity_limit():
    from streaming.options import StreamOptions

    assert f"the data contract's, {quality.QUANTITY_LIMIT})" in StreamOptions.model_fields["quantity_limit"].description
