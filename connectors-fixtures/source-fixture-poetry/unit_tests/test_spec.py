from source_fixture_poetry.source import SourceFixturePoetry


def test_spec_type():
    message = SourceFixturePoetry().spec()
    assert message["type"] == "SPEC"
    assert "connectionSpecification" in message["spec"]
