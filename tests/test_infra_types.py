"""scripts/infra_types.py: the Bicep reader and the resource type check.

The snippet tests use a tiny inline type structure in the bicep-types v3 format, so they never
need the shared type data. The last tests hold the real infra/ against the real data
(../shared/bicep-types, or $BICEP_TYPES): skipped when it is missing, failed when $CI is set.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "infra_types.py"


def load_script():
    """Import scripts/infra_types.py (scripts/ is not a package)."""
    spec = importlib.util.spec_from_file_location("infra_types", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


infra_types = load_script()


def ref(index: int) -> dict:
    """A type reference into TYPES."""
    return {"$ref": f"#/{index}"}


def prop(index: int, flags: int = 0) -> dict:
    """A property of type ``index`` (flags: 1 required, 2 read-only, 8 deploy-time constant)."""
    return {"type": ref(index), "flags": flags}


#: Two resource types: a widget (enum, ranged int, read-only, tags, array, discriminated
#: object) and its child, parts.
TYPES = {
    "resources": {
        "Test.Shop/widgets@2024-01-01": {"type": "#/0"},
        "Test.Shop/widgets/parts@2024-01-01": {"type": "#/14"},
    },
    "types": [
        {"$type": "ResourceType", "name": "Test.Shop/widgets@2024-01-01", "body": ref(1)},
        {
            "$type": "ObjectType",
            "name": "Test.Shop/widgets",
            "properties": {
                "id": prop(2, 10),
                "name": prop(2, 9),
                "location": prop(2, 1),
                "tags": prop(8),
                "properties": prop(3),
            },
        },
        {"$type": "StringType"},
        {
            "$type": "ObjectType",
            "name": "WidgetProperties",
            "properties": {
                "size": prop(4, 1),
                "count": prop(7),
                "state": prop(2, 2),
                "enabled": prop(9),
                "labels": prop(10),
                "target": prop(11),
            },
        },
        {"$type": "UnionType", "elements": [ref(5), ref(6)]},
        {"$type": "StringLiteralType", "value": "Small"},
        {"$type": "StringLiteralType", "value": "Large"},
        {"$type": "IntegerType", "minValue": 40, "maxValue": 1000},
        {"$type": "ObjectType", "name": "Tags", "properties": {}, "additionalProperties": ref(2)},
        {"$type": "BooleanType"},
        {"$type": "ArrayType", "itemType": ref(2)},
        {
            "$type": "DiscriminatedObjectType",
            "name": "Target",
            "discriminator": "kind",
            "baseProperties": {},
            "elements": {"Queue": ref(12)},
        },
        {
            "$type": "ObjectType",
            "name": "QueueTarget",
            "properties": {"kind": prop(13, 1), "queueName": prop(2, 1)},
        },
        {"$type": "StringLiteralType", "value": "Queue"},
        {"$type": "ResourceType", "name": "Test.Shop/widgets/parts@2024-01-01", "body": ref(15)},
        {
            "$type": "ObjectType",
            "name": "Test.Shop/widgets/parts",
            "properties": {"id": prop(2, 10), "name": prop(2, 9), "properties": prop(16)},
        },
        {"$type": "ObjectType", "name": "PartProperties", "properties": {"color": prop(2)}},
    ],
}

GOOD = """\
// A widget and its parts: every construct the reader has to know.
targetScope = 'resourceGroup'

@minValue(40)
@maxValue(1000)
param count int = 100

@allowed([
  'Small'
  'Large'
])
@sys.description('Widget size.')
param size string = 'Small'

param partNames array
param location string

var labels = [
  'a'
  'b'
]

/* A block comment
   over two lines. */
resource widget 'Test.Shop/widgets@2024-01-01' = {
  name: 'widget-${uniqueString(resourceGroup().id, 'x')}'
  location: location
  tags: {
    owner: 'team'
    '${location}-note': '''
free text, 'quoted', no ${interpolation}
'''
  }
  properties: {
    size: size
    count: count
    enabled: !empty(labels)
    labels: labels
    target: {
      kind: 'Queue'
      queueName: 'q\\'s'
    }
  }

  resource nested 'parts@2024-01-01' = {
    name: 'nested'
    properties: {
      color: 'blue'
    }
  }
}

resource parts 'Test.Shop/widgets/parts@2024-01-01' = [
  for (name, i) in partNames: if (i > 0) {
    parent: widget
    name: name
    properties: {
      color: i == 1 ? 'red' : 'green'
    }
  }
]

resource shortPart 'parts@2024-01-01' = if (length(partNames) > 2) {
  parent: widget
  name: 'short'
}

resource other 'Test.Shop/widgets@2024-01-01' existing = {
  name: 'other'
}

output id string = widget.id
"""


def check(sources: dict[str, str] | str, rules: tuple = ()):
    """Check inline Bicep (one text, or texts by path) against TYPES."""
    if isinstance(sources, str):
        sources = {"main.bicep": sources}
    return infra_types.check_sources(sources, infra_types.TypeIndex(TYPES), rules)


def lines(sources: dict[str, str] | str, rules: tuple = ()) -> list[str]:
    """The problem lines of a check."""
    return [str(problem) for problem in check(sources, rules).problems]


def widget(properties: str, header: str = "") -> str:
    """A widget resource whose ``properties`` object holds the given lines."""
    return (
        f"{header}\n"
        "resource widget 'Test.Shop/widgets@2024-01-01' = {\n"
        "  name: 'w'\n"
        "  location: 'westeurope'\n"
        "  properties: {\n"
        f"{properties}\n"
        "  }\n"
        "}\n"
    )


def line_of(text: str, needle: str) -> int:
    """The 1-based line of the first line containing ``needle``."""
    return next(n for n, line in enumerate(text.splitlines(), 1) if needle in line)


# --- the reader --------------------------------------------------------------------------


def test_the_reader_knows_every_construct_of_the_good_snippet():
    file = infra_types.parse_bicep(GOOD, "main.bicep")

    assert [r.symbol for r in file.resources] == ["widget", "nested", "parts", "shortPart", "other"]
    assert file.resources[1].enclosing is file.resources[0]
    assert file.resources[4].existing
    assert file.params["size"].allowed() == ["Small", "Large"]
    assert file.params["count"].bound("minValue") == 40
    assert file.params["count"].bound("maxValue") == 1000
    assert set(file.vars) == {"labels"}
    assert file.resources[0].line == line_of(GOOD, "resource widget")


def test_strings_escapes_interpolation_and_multiline_text():
    text = (
        "var a = 'it\\'s \\${not} a \\u{41}'\n"
        "var b = 'x${concat('}', 'y')}z'\n"
        "var c = '''\nline 'one'\n${raw}'''\n"
    )
    file = infra_types.parse_bicep(text)

    assert file.vars["a"].value.value == "it's ${not} a A"
    assert isinstance(file.vars["b"].value, infra_types.Expr)
    assert file.vars["b"].value.kind == "string"
    assert file.vars["c"].value.value == "line 'one'\n${raw}"


def test_bicep_the_reader_does_not_know_is_a_problem_not_a_crash():
    text = widget("    count: 1 +")

    (problem,) = lines(text)

    assert problem.startswith(f"main.bicep:{line_of(text, 'count: 1 +')}: cannot read this Bicep")


# --- resources against the type data ----------------------------------------------------


def test_a_good_resource_passes():
    report = check(GOOD)

    assert report.problems == []
    assert report.resources == 5


def test_an_unknown_property_is_reported_with_a_suggestion():
    text = widget("    size: 'Small'\n    colour: 'red'\n    enabeld: true")

    assert lines(text) == [
        f"main.bicep:{line_of(text, 'colour')}: resource widget (Test.Shop/widgets@2024-01-01): "
        "properties.colour: unknown property",
        f"main.bicep:{line_of(text, 'enabeld')}: resource widget (Test.Shop/widgets@2024-01-01): "
        "properties.enabeld: unknown property (did you mean 'enabled'?)",
    ]


def test_a_read_only_property_is_reported():
    text = widget("    size: 'Small'\n    state: 'Running'")

    (problem,) = lines(text)

    assert f"main.bicep:{line_of(text, 'state:')}:" in problem
    assert "properties.state: read-only property" in problem


def test_a_wrong_enum_literal_is_reported():
    text = widget("    size: 'Medium'")

    (problem,) = lines(text)

    assert problem.endswith("properties.size: 'Medium' is not allowed: expected 'Small' | 'Large'")


def test_literals_of_the_wrong_kind_or_out_of_range_are_reported():
    text = widget(
        "    size: 'Small'\n    count: 5\n    enabled: 'yes'\n    labels: [\n      1\n    ]"
    )

    assert [problem.split(": ", 2)[2] for problem in lines(text)] == [
        "properties.count: 5 is out of range 40..1000",
        "properties.enabled: 'yes' is not allowed: expected a bool",
        "properties.labels[0]: 1 is not allowed: expected a string",
    ]


def test_a_missing_required_property_is_reported():
    text = widget("    count: 50\n    target: {\n      kind: 'Queue'\n    }")

    assert [problem.split(": ", 2)[2] for problem in lines(text)] == [
        "properties: required property 'size' is missing",
        "properties.target: required property 'queueName' is missing",
    ]


def test_a_discriminated_object_follows_its_literal_discriminator():
    text = widget("    size: 'Small'\n    target: {\n      kind: 'Topic'\n      topic: 't'\n    }")

    assert [problem.split(": ", 2)[2] for problem in lines(text)] == [
        "properties.target.kind: 'Topic' is not allowed: expected 'Queue'",
        "properties.target.topic: unknown property",
    ]


def test_an_out_of_range_min_value_parameter_is_reported_at_the_param():
    header = "@minValue(1)\n@maxValue(1000)\nparam count int = 40\n"
    text = widget("    size: 'Small'\n    count: count", header)

    (problem,) = lines(text)

    assert problem == (
        f"main.bicep:{line_of(text, 'param count')}: resource widget "
        "(Test.Shop/widgets@2024-01-01): properties.count: param count: @minValue(1), "
        "allowed 40..1000"
    )


def test_a_parameter_without_an_upper_bound_is_reported_where_the_type_has_one():
    text = widget("    size: 'Small'\n    count: count", "@minValue(40)\nparam count int")

    (problem,) = lines(text)

    assert problem.endswith("param count: no @maxValue, allowed 40..1000")


def test_allowed_values_of_a_parameter_are_each_checked():
    header = "@allowed([\n  'Small'\n  'Huge'\n])\nparam size string"
    text = widget("    size: size", header)

    (problem,) = lines(text)

    assert problem.endswith(
        "param size @allowed: 'Huge' is not allowed: expected 'Small' | 'Large'"
    )


def test_a_module_parameter_is_followed_to_what_its_callers_pass():
    module = widget("    size: 'Small'\n    count: count", "param count int")
    main = "@minValue(1)\n@maxValue(1000)\nparam count int = 50\n\n"
    main += "module w 'modules/w.bicep' = {\n  name: 'w'\n"
    main += "  params: {\n    count: count\n  }\n}\n"

    (problem,) = lines({"main.bicep": main, "modules/w.bicep": module})

    assert problem.startswith("main.bicep:3: resource widget (Test.Shop/widgets@2024-01-01)")
    assert "param count: @minValue(1), allowed 40..1000" in problem
    assert "via param count <- module w (main.bicep)" in problem


def test_a_variable_is_checked_through_its_value():
    text = widget("    size: 'Small'\n    target: target", "var target = {\n  kind: 'Queue'\n}")

    (problem,) = lines(text)

    assert problem.startswith(f"main.bicep:{line_of(text, 'var target')}:")
    assert problem.endswith(
        "properties.target: required property 'queueName' is missing (via var target)"
    )


def test_an_unknown_type_or_api_version_is_reported():
    text = (
        "resource a 'Test.Shop/widgets@2020-01-01' = {\n  name: 'a'\n}\n"
        "resource b 'Test.Shop/gadgets@2024-01-01' existing = {\n  name: 'b'\n}\n"
    )

    assert [problem.split(": ", 2)[2] for problem in lines(text)] == [
        "(type): API version not in Bicep's type data (listed: 2024-01-01)",
        "(type): type not in Bicep's type data (types.trimmed.json holds the project's types "
        "only: add it as its SOURCES.md explains)",
    ]


def test_an_existing_resource_is_held_to_its_type_only():
    text = "resource a 'Test.Shop/widgets@2024-01-01' existing = {\n  name: 'a'\n  bogus: 1\n}\n"

    assert lines(text) == []


def test_a_child_type_must_belong_to_its_parent():
    text = GOOD + (
        "resource stray 'Test.Shop/widgets@2024-01-01' = {\n"
        "  parent: widget\n  name: 's'\n  location: 'x'\n}\n"
    )

    (problem,) = lines(text)

    assert "resource stray" in problem
    assert problem.endswith(
        "(type): type is not a child of its parent widget (Test.Shop/widgets@2024-01-01)"
    )


def test_a_resource_must_be_writable_at_the_target_scope():
    types = {**TYPES, "types": [dict(t) for t in TYPES["types"]]}
    types["types"][0]["writableScopes"] = 8  # resource group only
    text = "targetScope = 'subscription'\n" + widget("    size: 'Small'")

    report = infra_types.check_sources({"main.bicep": text}, infra_types.TypeIndex(types), ())

    (problem,) = (str(p) for p in report.problems)
    assert problem.endswith("(type): cannot be deployed at targetScope 'subscription'")


def test_deploy_rules_forbid_a_property_and_narrow_a_range():
    rules = (
        infra_types.DeployRule(
            resource_type="Test.Shop/widgets",
            when_set="properties.target",
            path="properties.enabled",
            forbidden=True,
            reason="queue widgets reject enabled",
            source="test",
        ),
        infra_types.DeployRule(
            resource_type="Test.Shop/widgets",
            when_set="properties.target",
            path="properties.count",
            min_value=50,
            max_value=60,
            reason="queue widgets count 50 to 60",
            source="test",
        ),
    )
    target = "    target: {\n      kind: 'Queue'\n      queueName: 'q'\n    }"
    plain = widget("    size: 'Small'\n    enabled: true\n    count: 45")
    queued = widget(f"    size: 'Small'\n    enabled: true\n    count: 45\n{target}")

    assert lines(plain, rules) == []
    assert [problem.split(": ", 2)[2] for problem in lines(queued, rules)] == [
        "properties.enabled: rejected at deploy: queue widgets reject enabled [test]",
        "properties.count: 45 is out of range 50..60 (queue widgets count 50 to 60 [test])",
    ]


# --- the real infra/ against the real type data ------------------------------------------


@pytest.fixture(scope="module")
def real_types():
    """The shared Bicep type data: skipped when missing, a failure in CI."""
    path = infra_types.types_path()
    if not path.is_file():
        message = (
            f"Bicep type data not found at {path}: CI needs shared/bicep-types beside the "
            "repository (or BICEP_TYPES)"
        )
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return infra_types.TypeIndex.load(path)


def test_infra_has_no_type_problems(real_types):
    report = infra_types.check_sources(infra_types.infra_sources(), real_types)

    assert [str(problem) for problem in report.problems] == []
    assert report.resources > 20


def test_the_real_data_and_rules_catch_the_issue_9_deploy_errors(real_types):
    text = (
        "@minValue(1)\n@maxValue(1000)\nparam maximumInstanceCount int\n"
        "resource app 'Microsoft.Web/sites@2024-04-01' = {\n"
        "  name: 'app'\n  location: 'westeurope'\n  properties: {\n"
        "    functionAppConfig: {\n      scaleAndConcurrency: {\n"
        "        maximumInstanceCount: maximumInstanceCount\n"
        "        instanceMemoryMB: 2048\n      }\n    }\n"
        "    siteConfig: {\n      ftpsState: 'Disabled'\n    }\n  }\n}\n"
    )

    report = infra_types.check_sources({"main.bicep": text}, real_types)

    messages = [problem.split(": ", 2)[2] for problem in map(str, report.problems)]
    assert len(messages) == 2
    assert messages[0].startswith(
        "properties.functionAppConfig.scaleAndConcurrency.maximumInstanceCount: "
        "param maximumInstanceCount: @minValue(1), allowed 40..1000"
    )
    assert messages[1].startswith("properties.siteConfig.ftpsState: rejected at deploy:")
    assert "51021" in messages[1]


def test_main_prints_a_summary_and_exits_0_on_the_real_infra(real_types, capsys):
    assert infra_types.main() == 0

    assert capsys.readouterr().out.splitlines()[-1].endswith(" resources checked, 0 problems")


def test_main_exits_2_without_type_data(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("BICEP_TYPES", str(tmp_path / "missing.json"))

    assert infra_types.main() == 2

    assert "Bicep type data not found" in capsys.readouterr().err
