"""Prompt templates: search order, includes, and every way a template can be refused.

Templates are found in the job file's folder, then the project's `templates/`, then the
built-ins; `vidpipe render` labels each prompt with the template it came from. Broken
templates are refused by `vidpipe validate` (exit 2) naming the template file and line.
"""

from __future__ import annotations

import re

import pytest
from conftest import Project, refused


def section(output: str, heading: str) -> tuple[str, str]:
    """(template label, body) of the render section whose heading starts with `heading`."""
    match = re.search(
        rf"^{re.escape(heading)}  \[(?P<label>[^\]]+)\]\n\n(?P<body>.*?)(?=\n#|\Z)",
        output,
        re.MULTILINE | re.DOTALL,
    )
    assert match, f"no section {heading!r} in:\n{output}"
    return match["label"], match["body"].strip()


JOB = "prompt: A lighthouse keeper lights the lamp\nscenes: 2\nvars:\n  place: a headland\n"


# -- search order ----------------------------------------------------------------------------


def test_built_in_templates_by_default(project: Project) -> None:
    project.job("a", JOB)
    out = project.cli("render", "jobs/a.yaml").output
    assert section(out, "## storyboard prompt")[0] == "vidpipe:templates/storyboard.j2"
    assert section(out, "### scene 0 start frame")[0] == "vidpipe:templates/keyframe_start.j2"
    assert section(out, "### scene 0 end frame")[0] == "vidpipe:templates/keyframe_end.j2"
    assert section(out, "### scene 1 motion")[0] == "vidpipe:templates/motion.j2"


def test_project_templates_shadow_built_ins_and_the_job_folder_shadows_both(
    project: Project,
) -> None:
    project.write("jobs/promo/a.yaml", JOB)

    out = project.cli("render", "jobs/promo/a.yaml").output
    assert section(out, "### scene 1 motion")[0] == "vidpipe:templates/motion.j2"

    project.write("templates/motion.j2", "PROJECT motion for scene {{ scene.index }}\n")
    out = project.cli("render", "jobs/promo/a.yaml").output
    assert section(out, "### scene 1 motion") == (
        "templates/motion.j2",
        "PROJECT motion for scene 1",
    )

    project.write("jobs/promo/motion.j2", "JOB FOLDER motion in {{ vars.place }}\n")
    out = project.cli("render", "jobs/promo/a.yaml").output
    assert section(out, "### scene 1 motion") == (
        "jobs/promo/motion.j2",
        "JOB FOLDER motion in a headland",
    )
    # Only the shadowed template changed; the others are still the built-ins.
    assert section(out, "### scene 1 start frame")[0] == "vidpipe:templates/keyframe_start.j2"


def test_a_named_template_follows_the_same_search(project: Project) -> None:
    project.job("a", JOB + "templates:\n  storyboard: brief.j2\n")
    project.write("templates/brief.j2", "BRIEF from templates/: {{ job.prompt }}\n")
    out = project.cli("render", "jobs/a.yaml").output
    assert section(out, "## storyboard prompt") == (
        "templates/brief.j2",
        "BRIEF from templates/: A lighthouse keeper lights the lamp",
    )
    project.write("jobs/brief.j2", "BRIEF from jobs/\n")
    out = project.cli("render", "jobs/a.yaml").output
    assert section(out, "## storyboard prompt") == ("jobs/brief.j2", "BRIEF from jobs/")


def test_a_template_path_relative_to_the_job_file(project: Project) -> None:
    project.job("a", JOB + "templates:\n  motion: ../shared/slow.j2\n")
    project.write("shared/slow.j2", "Slow {{ scene.index }}/{{ scene_count }}\n")
    out = project.cli("render", "jobs/a.yaml", "--scene", "1").output
    assert section(out, "### scene 1 motion") == ("shared/slow.j2", "Slow 1/2")


def test_include_follows_the_search_order(project: Project) -> None:
    project.job("a", JOB + "templates:\n  storyboard: brief.j2\n")
    project.write("templates/brief.j2", "HEAD\n{% include 'footer.j2' %}\n")
    project.write("templates/footer.j2", "FOOTER from templates/ ({{ job.scenes }} scenes)\n")
    out = project.cli("render", "jobs/a.yaml").output
    assert section(out, "## storyboard prompt")[1] == "HEAD\nFOOTER from templates/ (2 scenes)"

    project.write("jobs/footer.j2", "FOOTER from jobs/\n")
    out = project.cli("render", "jobs/a.yaml").output
    assert section(out, "## storyboard prompt")[1] == "HEAD\nFOOTER from jobs/"


def test_include_of_a_built_in_template(project: Project) -> None:
    project.job("a", JOB + "templates:\n  motion: motion_plus.j2\n")
    project.write("templates/motion_plus.j2", "{% include 'motion.j2' %}\nPLUS a gentle score.\n")
    out = project.cli("render", "jobs/a.yaml", "--scene", "0").output
    label, body = section(out, "### scene 0 motion")
    assert label == "templates/motion_plus.j2"
    assert body.endswith("PLUS a gentle score.")
    assert "in one continuous 1-second take, with no cuts." in body


# -- refused templates -----------------------------------------------------------------------


def test_a_template_named_in_the_job_that_does_not_exist(project: Project) -> None:
    project.job("a", JOB + "templates:\n  storyboard: brief.j2\n")
    refused(
        project.cli("validate"),
        "jobs/a.yaml:6:15: template 'brief.j2' not found in jobs/, templates/ or vidpipe's "
        "built-in templates; create it or fix the name",
    )


def test_an_included_template_that_does_not_exist(project: Project) -> None:
    project.job("a", JOB + "templates:\n  storyboard: brief.j2\n")
    project.write("templates/brief.j2", "{% include 'missing.j2' %}\n")
    refused(
        project.cli("validate"),
        "templates/brief.j2: template 'missing.j2' not found in the job's folder, the "
        "project's templates/ or vidpipe's built-in templates (job a, jobs/a.yaml)",
    )


def test_an_include_leaving_the_project(project: Project) -> None:
    project.job("a", JOB + "templates:\n  storyboard: brief.j2\n")
    project.write("templates/brief.j2", "{% include '../../../etc/passwd' %}\n")
    refused(
        project.cli("validate"),
        "templates/brief.j2: template path '../../../etc/passwd' leaves the project "
        "(job a, jobs/a.yaml)",
    )


def test_a_syntax_error_names_the_template_and_line(project: Project) -> None:
    project.job("a", JOB)
    project.write(
        "templates/motion.j2", "{{ scene.video_motion_prompt }}\n\n{% if %}x{% endif %}\n"
    )
    refused(
        project.cli("validate"),
        "templates/motion.j2:3: syntax error: Expected an expression, got 'end of "
        "statement block' (job a, jobs/a.yaml)",
    )


def test_a_syntax_error_in_an_included_template(project: Project) -> None:
    project.job("a", JOB)
    project.write("templates/storyboard.j2", "line 1\n{% include 'part.j2' %}\n")
    project.write("templates/part.j2", "a\nb\n{{ job.prompt }\n")
    refused(
        project.cli("validate"),
        "templates/part.j2:3: syntax error: unexpected '}' (job a, jobs/a.yaml)",
    )


def test_an_undefined_variable_names_template_line_and_variable(project: Project) -> None:
    project.job("a", JOB)
    project.write("templates/storyboard.j2", "Idea: {{ job.prompt }}\nMood: {{ mood }}\n")
    refused(
        project.cli("validate"),
        "templates/storyboard.j2:2: undefined variable 'mood'; "
        "templates see job, vars, assets and, in scene templates, scene, prev_scene, next_scene, "
        "scene_count, style_guide (job a, jobs/a.yaml)",
    )


def test_an_undefined_var_says_where_to_set_it(project: Project) -> None:
    project.job("a", JOB)
    project.write(
        "templates/keyframe_end.j2", "{{ scene.end_frame_prompt }}\n\nIn {{ vars.weather }}\n"
    )
    refused(
        project.cli("validate"),
        "templates/keyframe_end.j2:3: undefined variable "
        "vars.weather: 'dict object' has no attribute 'weather'; set it under `vars:` in the "
        "job file or in `defaults: vars:` in vidpipe.yaml (job a, jobs/a.yaml)",
    )


def test_an_undefined_variable_in_an_included_template_names_the_included_file(
    project: Project,
) -> None:
    project.job("a", JOB)
    project.write("templates/storyboard.j2", "Idea\n{% include 'part.j2' %}\n")
    project.write("templates/part.j2", "one\ntwo {{ job.moood }}\n")
    refused(
        project.cli("validate"),
        "templates/part.j2:2: undefined variable job.moood: "
        "'dict object' has no attribute 'moood' (job a, jobs/a.yaml)",
    )


def test_prev_scene_is_none_in_the_first_scene(project: Project) -> None:
    project.job("a", JOB)
    project.write("templates/motion.j2", "Continue from: {{ prev_scene.end_frame_prompt }}\n")
    refused(
        project.cli("validate"),
        "templates/motion.j2:1: undefined variable "
        "prev_scene.end_frame_prompt: prev_scene is None here (prev_scene in the first scene, "
        "next_scene in the last); guard it with {% if prev_scene %} (job a, jobs/a.yaml)",
    )
    project.write(
        "templates/motion.j2",
        "{% if prev_scene %}Continue from: {{ prev_scene.end_frame_prompt }}{% endif %}\n"
        "{{ scene.video_motion_prompt }}\n",
    )
    assert project.cli("validate").exit_code == 0


def test_a_template_that_is_not_utf8(project: Project) -> None:
    project.job("a", JOB)
    (project.root / "templates" / "motion.j2").write_bytes(b"caf\xe9 {{ scene.index }}\n")
    refused(
        project.cli("validate"),
        "templates/motion.j2: template is not UTF-8 text (job a, jobs/a.yaml)",
    )


SANDBOX_ESCAPES = [
    pytest.param(
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "access to attribute '__class__' of 'str' object is unsafe.",
        id="str-class-mro-subclasses",
    ),
    pytest.param(
        "{{ job.__class__ }}",
        "access to attribute '__class__' of 'dict' object is unsafe.",
        id="job-class",
    ),
    pytest.param(
        "{{ cycler.__init__.__globals__.os.system('touch pwned') }}",
        "access to attribute '__init__' of 'type' object is unsafe.",
        id="cycler-globals-os-system",
    ),
    pytest.param(
        "{{ lipsum.__globals__['os'].system('touch pwned') }}",
        "access to attribute '__globals__' of 'function' object is unsafe.",
        id="lipsum-globals",
    ),
    pytest.param(
        "{{ job.update({'prompt': 'x'}) }}",
        "access to attribute 'update' of 'dict' object is unsafe.",
        id="mutate-job",
    ),
]


@pytest.mark.parametrize(("expression", "why"), SANDBOX_ESCAPES)
def test_sandbox_escapes_are_refused_and_nothing_runs(
    project: Project, expression: str, why: str
) -> None:
    project.job("a", JOB)
    project.write("templates/storyboard.j2", f"Idea: {{{{ job.prompt }}}}\n{expression}\n")
    refused(
        project.cli("validate"),
        f"templates/storyboard.j2:2: not allowed in the template sandbox: {why} "
        "(job a, jobs/a.yaml)",
    )
    assert not (project.root / "pwned").exists()


def test_a_sandbox_escape_is_refused_by_render_too(project: Project) -> None:
    project.job("a", JOB)
    project.write("templates/motion.j2", "{{ cycler.__init__.__globals__ }}\n")
    result = project.cli("render", "jobs/a.yaml")
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert result.output.endswith(
        "Error: templates/motion.j2:1: not allowed in the template sandbox: access to attribute "
        "'__init__' of 'type' object is unsafe.\n"
    )


def test_only_the_first_problem_of_a_job_templates_but_every_job_is_checked(
    project: Project,
) -> None:
    project.job("a", JOB + "templates:\n  motion: m_a.j2\n")
    project.job("b", JOB + "templates:\n  motion: m_b.j2\n")
    project.write("templates/m_a.j2", "{{ nope_a }}\n")
    project.write("templates/m_b.j2", "{% for %}\n")
    result = project.cli("validate")
    assert result.exit_code == 2
    assert "templates/m_a.j2:1: undefined variable 'nope_a'" in result.output
    assert "templates/m_b.j2:1: syntax error:" in result.output
    assert "(job b, jobs/b.yaml)" in result.output
    assert result.output.endswith("2 problems found; nothing was run.\n")


def test_a_remembered_template_check_never_hides_an_edit(project: Project) -> None:
    # Jobs that passed are not rendered again by the next command (the check is cached
    # by template fingerprint and job fields): an edit to either is checked afresh.
    project.write("templates/motion.j2", "Move: {{ scene.scene_description }}\n")
    project.job("ok", "prompt: A kite over the sea\nscenes: 2\n")
    assert project.cli("validate").exit_code == 0
    assert project.cli("validate").exit_code == 0
    project.write("templates/motion.j2", "Move: {{ scene.no_such_field }}\n")
    broken = project.cli("validate")
    assert broken.exit_code == 2 and "templates/motion.j2:1" in broken.output
    project.write("templates/motion.j2", "Move: {{ scene.scene_description }}\n")
    project.job("ok", "prompt: A kite over the sea\nscenes: 2\nvars: {mood: calm}\n")
    project.write("templates/motion.j2", "Move: {{ vars.weather }}\n")
    assert project.cli("validate").exit_code == 2
