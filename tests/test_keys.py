import pytest

from pytest_ablation.run.keys import canonical, derive_seed, digest


def test_digest_ignores_key_order_but_not_values():
    assert digest({"a": 1, "b": [1, 2]}) == digest({"b": [1, 2], "a": 1})
    assert digest({"momentum": 0.98}) != digest({"momentum": 0.980000001})
    assert digest({"x": (1, 2)}) == digest({"x": [1, 2]})
    assert digest({"x": 1}) != digest({"x": "1"})


def test_seed_is_stable_and_separates_parts():
    assert derive_seed("study", "a cat", 0) == derive_seed("study", "a cat", 0)
    assert derive_seed("study", "a cat", 0) != derive_seed("study", "a cat", 1)
    assert derive_seed("study", "a cat", 0) != derive_seed("other", "a cat", 0)
    assert 0 <= derive_seed("s", "p", 3) < 2**63


def test_unhashable_configuration_is_refused_with_its_place():
    with pytest.raises(TypeError, match=r"config\.weights: object"):
        canonical({"weights": object()}, where="config")
