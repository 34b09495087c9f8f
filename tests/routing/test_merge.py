"""Virtual models' defaults: merged under the caller's fields, in native and OpenAI-compatible shapes."""

import pytest

from vault.routing.merge import merged, native_only, openai_defaults, with_native_defaults, with_openai_defaults

SEARCH = {"tools": [{"google_search": {}}]}
NOTHINK = {"generationConfig": {"thinkingConfig": {"thinkingBudget": 0}, "temperature": 0.2}}


def test_defaults_fill_what_the_caller_left_out():
    body = {"contents": [{"parts": [{"text": "hi"}]}], "generationConfig": {"maxOutputTokens": 10}}
    assert with_native_defaults(body, NOTHINK)["generationConfig"] == {
        "maxOutputTokens": 10, "thinkingConfig": {"thinkingBudget": 0}, "temperature": 0.2}
    assert with_native_defaults(body, SEARCH)["tools"] == [{"google_search": {}}]


@pytest.mark.parametrize(("body", "expected"), [
    ({"tools": [{"code_execution": {}}]},  # a list is the caller's as a whole
     {"tools": [{"code_execution": {}}], "generationConfig": NOTHINK["generationConfig"]}),
    ({"generationConfig": {"thinkingConfig": {"thinkingBudget": 512}}},
     {"generationConfig": {"thinkingConfig": {"thinkingBudget": 512}, "temperature": 0.2}} | SEARCH),
    ({"generation_config": {"thinking_config": {"thinking_budget": 512}}},  # snake_case counts as set
     {"generation_config": {"thinking_config": {"thinking_budget": 512}, "temperature": 0.2}} | SEARCH),
])
def test_the_callers_explicit_fields_win(body, expected):
    assert with_native_defaults(body, NOTHINK | SEARCH) == expected


def test_openai_bodies_get_what_geminis_openai_endpoint_takes():
    assert openai_defaults(NOTHINK | SEARCH) == {
        "temperature": 0.2, "extra_body": {"google": {"thinking_config": {"thinking_budget": 0}}}}
    assert native_only(NOTHINK | SEARCH) == ["tools"]
    body = {"model": "gemini-2.5-flash", "messages": [], "extra_body": {"google": {"cached_content": "c"}}}
    assert with_openai_defaults(body, NOTHINK)["extra_body"] == {
        "google": {"cached_content": "c", "thinking_config": {"thinking_budget": 0}}}


def test_openai_callers_reasoning_effort_and_output_cap_win():
    defaults = {"generationConfig": {"thinkingConfig": {"thinkingBudget": 0}, "maxOutputTokens": 99}}
    body = {"model": "m", "messages": [], "reasoning_effort": "high", "max_completion_tokens": 5}
    assert with_openai_defaults(body, defaults) == body


def test_merge_copies_and_never_changes_its_inputs():
    body, defaults = {"a": {"b": 1}}, {"a": {"c": 2}}
    assert merged(body, defaults) == {"a": {"b": 1, "c": 2}}
    assert body == {"a": {"b": 1}} and defaults == {"a": {"c": 2}}
