"""Document templates: built-ins, validation of a user's file, planning to a skeleton, and the
section prompt offering what a section may contain."""

import asyncio

import pytest
from click.testing import CliRunner

from longwriter import templates
from longwriter.backends.fake import ScriptedBackend
from longwriter.cli import main
from longwriter.context import ContextBuilder
from longwriter.errors import InputError, TemplateError
from longwriter.graph import build_graph
from longwriter.outline import Section, dump_outline, load_outline, parse_outline
from longwriter.pipeline import plan_request
from longwriter.planner import Planner
from longwriter.prompts import Prompts
from longwriter.writing.prompts import SectionPrompts

from .conftest import chapter_asked, smart_responder

TECH_BLOG_ZH = ["背景介绍", "核心概念与联系", "核心算法原理与具体操作步骤", "数学模型和公式详细讲解与举例说明",
                "项目实践：代码实例和详细解释说明", "实际应用场景", "工具和资源推荐", "总结：未来发展趋势与挑战",
                "附录：常见问题与解答"]


def plan(fake, topic, words, **options):
    request = plan_request(topic, words, **options)
    return asyncio.run(Planner(fake, Prompts()).plan(request, None, request.load_template()))


def test_built_in_templates_exist_in_english_and_chinese():
    assert templates.names() == ["article", "report", "tech-blog"]
    assert [s.title for s in templates.load("tech-blog", "zh").sections] == TECH_BLOG_ZH
    english = templates.load("tech-blog", "en")
    assert english.language == "en" and len(english.sections) == 9 and english.sections[0].title == "Background"
    for name in templates.names():
        for language in ("en", "zh", "zh-Hans", "fr"):  # French falls back to English
            t = templates.load(name, language)
            assert t.name == name and t.language == ("zh" if language.startswith("zh") else "en")


@pytest.mark.parametrize("body, message", [
    ("name: x\nsections:\n  - title: A\n    share: 0\n", "section 1, field 'share': Input should be greater than 0"),
    ("name: x\nsections:\n  - title: A\n    colour: red\n", "section 1, field 'colour': unknown field (allowed: title"),
    ("name: x\nsections:\n  - title: A\n    contains: [video]\n", "section 1, field 'contains', field '0'"),
    ("name: x\nsections: []\n", "field 'sections': List should have at least 1 item"),
    ("name: x\ntone: dry\nsections:\n  - title: A\n", "field 'tone': unknown field (allowed: name, language"),
    ("- a list\n", "must be a mapping with name and sections"),
    ("name: [\n", "malformed YAML at line 2"),
    ("name: x\nname: y\nsections:\n  - title: A\n", "duplicate key 'name'"),
])
def test_a_bad_template_file_is_one_line_naming_the_place(tmp_path, body, message):
    path = tmp_path / "house.yaml"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(TemplateError) as err:
        templates.load(str(path))
    assert message in str(err.value) and str(err.value).startswith(f"template {path}:")
    assert "\n" not in str(err.value) and TemplateError.exit_code == 11


def test_an_unknown_name_and_a_missing_file_are_refused():
    with pytest.raises(TemplateError, match="no template 'blog'"):
        templates.load("blog")
    with pytest.raises(TemplateError, match="no such file"):
        templates.load("/nonexistent/house.yaml")


def test_a_template_is_checked_before_any_model_loads():
    with pytest.raises(InputError, match="too few for template 'tech-blog'"):
        plan_request("Hash tables", 100, template="tech-blog")
    with pytest.raises(InputError, match="do not apply with a template"):
        plan_request("Hash tables", 1200, template="report", sections=4)
    assert plan_request("Hash tables", 1200, template="report").load_template().name == "report"


def test_the_planner_keeps_the_skeleton_shares_briefs_and_contents():
    def responder(request):  # subsection titles without the chapter's colon, which titles cut at
        parent = chapter_asked(request.messages[-1].content)
        if parent and request.prefill:
            return f" Part {request.prefill.strip().rstrip('.').split()[-1]} of {parent.split(':')[0]}"
        return smart_responder(request)

    outline = plan(ScriptedBackend(responder), "Hash tables in practice", 3000, template="tech-blog")
    blog = templates.load("tech-blog", "en")
    assert [s.title for s in outline.sections] == [s.title for s in blog.sections]
    assert [s.brief for s in outline.sections] == [s.brief for s in blog.sections]
    assert sum(leaf.words for leaf in outline.leaves()) == 3000
    shares = {s.title: s.share for s in blog.sections}
    for section in outline.sections:  # budgets follow the shares (largest-remainder rounding)
        assert abs(section.words - 3000 * shares[section.title] / 100) <= 1
    subdivided = {s.title for s in outline.sections if s.children}
    assert subdivided == {s.title for s in blog.sections if s.subdivide}
    code = outline.sections[4]
    assert code.children and all(c.contains == ["prose", "list", "code"] and c.brief for c in code.children)
    assert outline.sections[0].contains == [] and outline.sections[3].contains == ["prose", "math"]
    assert outline.audience == blog.audience and outline.style == blog.style


def test_a_short_document_is_not_subdivided_and_the_users_audience_wins(fake):
    outline = plan(fake, "Hash tables", 600, template="tech-blog", audience="students")
    assert len(outline.leaves()) == 9 and not any(s.children for s in outline.sections)
    assert outline.audience == "students" and outline.style == templates.load("tech-blog").style


def test_a_chinese_topic_gets_the_chinese_skeleton(fake):
    outline = plan(fake, "哈希表的原理与实践", 3000, template="tech-blog")
    assert [s.title for s in outline.sections] == TECH_BLOG_ZH and outline.language == "zh"
    assert len({s.id for _, s in outline.walk()}) == len(list(outline.walk()))  # ids unique without ASCII


def test_a_users_template_file_plans_too(tmp_path, fake):
    path = tmp_path / "release-notes.yaml"
    path.write_text("name: release-notes\nstyle: terse\nsections:\n"
                    "  - title: What changed\n    share: 3\n    contains: [prose, list]\n"
                    "  - title: How to upgrade\n    share: 1\n    contains: [code]\n", encoding="utf-8")
    outline = plan(fake, "Version 2 of the parser", 400, template=str(path))
    assert [(s.title, s.words, s.contains) for s in outline.sections] == \
        [("What changed", 300, ["prose", "list"]), ("How to upgrade", 100, ["code"])]
    assert outline.sections[0].brief  # none in the template: the planner wrote one
    assert outline.style == "terse"


def test_contents_reach_the_section_prompt_and_the_outline_file(tmp_path):
    outline = parse_outline({"title": "Hashing", "topic": "Hash tables", "words": 400, "sections": [
        {"id": "a", "title": "Idea", "words": 1},
        {"id": "b", "title": "Code", "words": 1, "contains": ["prose", "code", "math"]}]})
    contexts = ContextBuilder(outline, build_graph(outline, "chapter"), lambda t: len(t.split()))
    prompts = SectionPrompts(outline, Prompts(), lambda t: len(t.split()))
    plain, rich = (prompts.section(contexts.build(sid, {}, {}), []) for sid in ("a", "b"))
    assert "flowing prose in paragraphs" in plain and "fenced code" not in plain
    assert "fenced code blocks" in rich and "formulas in LaTeX" in rich and "Markdown table" not in rich
    path = tmp_path / "outline.yaml"
    path.write_text(dump_outline(outline), encoding="utf-8")
    assert load_outline(path).sections[1].contains == ["prose", "code", "math"]
    assert "contains" not in dump_outline(outline).split("id: b")[0]  # only where set


def test_contents_change_the_hash_only_when_set():
    plain = Section(id="a", title="T", brief="b", words=10)
    assert plain.content_hash() == "7019ef0875e0a47a"  # as before the field existed: old runs resume
    assert Section(id="a", title="T", brief="b", words=10, contains=["code"]).content_hash() != plain.content_hash()


def test_an_unknown_element_in_an_outline_is_one_line(tmp_path):
    from longwriter.errors import OutlineError

    path = tmp_path / "outline.yaml"
    path.write_text("title: T\ntopic: t\nwords: 100\nsections:\n  - id: a\n    title: A\n    words: 1\n"
                    "    contains: [video]\n", encoding="utf-8")
    with pytest.raises(OutlineError, match=r"section 'a', field 'contains'"):
        load_outline(path)


def test_the_templates_command_lists_and_shows(tmp_path):
    listed = CliRunner().invoke(main, ["templates"])
    assert listed.exit_code == 0 and listed.output.splitlines()[2].startswith("tech-blog  Background / ")
    shown = CliRunner().invoke(main, ["templates", "tech-blog", "--language", "zh"])
    assert shown.exit_code == 0 and "核心算法原理与具体操作步骤" in shown.output
    copy = tmp_path / "mine.yaml"
    copy.write_text(shown.output, encoding="utf-8")
    assert templates.load(str(copy)).sections[0].title == "背景介绍"  # shown YAML is a valid template
    bad = CliRunner().invoke(main, ["plan", "--topic", "x", "--template", str(tmp_path / "none.yaml")])
    assert bad.exit_code == 11
