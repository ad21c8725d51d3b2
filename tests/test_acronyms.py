"""Acronyms learned from how abstracts define them: both directions, plurals, hyphens, and
definitions too rare or too short to trust are ignored."""

from __future__ import annotations

from digest.acronyms import abbreviations, expansions, fits, is_acronym

ABSTRACTS = [
    "We train a sparse mixture of experts (MoE) model at scale.",
    "Sparse Mixture-of-Experts (MoE) layers route tokens to experts.",
    "Structured state space models (SSMs) such as Mamba scale linearly.",
    "We revisit state space models (SSM; Gu et al.) for long sequences.",
    "A reward model (RM) scores answers; our reward model (RM) is small.",
    "Ministry of Education (MoE) guidelines for schools.",
]


def test_an_acronym_finds_its_expansion_and_a_phrase_its_acronym() -> None:
    """MoE <-> mixture of experts, SSM(s) <-> state space models, hyphens or not."""
    assert expansions("MoE", ABSTRACTS) == ("mixture of experts",)
    assert expansions("SSMs", ABSTRACTS) == ("state space models",)
    assert abbreviations("mixture-of-experts", ABSTRACTS) == ("MoE",)
    assert abbreviations("state space model", ABSTRACTS) == ("SSM",)


def test_rare_or_short_definitions_are_ignored() -> None:
    """A definition seen once is not learned; a phrase never gets a two-letter acronym."""
    assert "ministry of education" not in expansions("MoE", ABSTRACTS)
    assert abbreviations("reward model", ABSTRACTS) == ()
    assert expansions("LoRA", ABSTRACTS) == ()


def test_what_counts_as_an_acronym_and_a_fit() -> None:
    """Two capitals make an acronym; its letters must spell the words in order."""
    assert is_acronym("MoE") and is_acronym("CLIP") and is_acronym("SSMs")
    assert (
        not is_acronym("Mamba") and not is_acronym("int4") and not is_acronym("mixture of experts")
    )
    assert fits("MoE", ["mixture", "of", "experts"])
    assert not fits("MoE", ["latent", "mixture", "of", "experts"])
    assert not fits("SSM", ["state", "model"])
