"""`vidpipe validate`: every invalid job file is refused with exit 2, located, never a traceback.

Each refusal asserts the complete problem lines (`path:line:column: message`), the summary
line, and that nothing was run. Valid neighbours are checked too, so a refusal is about the
bad value and not about the test's set-up.
"""

from __future__ import annotations

import io
import re
import time
from pathlib import Path

from click.testing import Result
from conftest import Project, refused
from PIL import Image


def accepted(result: Result, *oks: str) -> None:
    out = result.output
    assert result.exit_code == 0, out
    for line in oks:
        assert line in out.splitlines(), out


def png_bytes(size: tuple[int, int] = (64, 36)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (200, 120, 40)).save(buf, "PNG")
    return buf.getvalue()


# -- a valid job ----------------------------------------------------------------------------


def test_a_valid_job_is_listed_with_its_scenes_aspect_and_provider(project: Project) -> None:
    project.job("good", 'prompt: A lighthouse at dusk\naspect_ratio: "9:16"\nscenes: 2\n')
    result = project.cli("validate")
    assert result.exit_code == 0, result.output
    assert result.output == "ok  jobs/good.yaml: good (2 scenes, 9:16, local)\n1 job valid.\n"


# -- YAML ------------------------------------------------------------------------------------


def test_malformed_yaml_is_located(project: Project) -> None:
    project.job("bad", "prompt: a lighthouse\nstyle: [noir\naspect_ratio: '16:9'\n")
    refused(
        project.cli("validate"),
        "jobs/bad.yaml:3:13: invalid YAML: expected ',' or ']', but got ':'",
    )


def test_an_empty_file_is_refused(project: Project) -> None:
    project.job("bad", "")
    refused(
        project.cli("validate"),
        "jobs/bad.yaml:1:1: file is empty; a job needs at least a `prompt:`",
    )


def test_a_comment_only_file_is_empty_too(project: Project) -> None:
    project.job("bad", "# prompt: not yet\n")
    refused(
        project.cli("validate"),
        "jobs/bad.yaml:1:1: file is empty; a job needs at least a `prompt:`",
    )


def test_a_top_level_list_is_refused(project: Project) -> None:
    project.job("bad", "- prompt: one\n- prompt: two\n")
    refused(
        project.cli("validate"),
        "jobs/bad.yaml:1:1: a job file holds one mapping of keys (prompt: …), not a list",
    )


def test_a_top_level_scalar_is_refused(project: Project) -> None:
    project.job("bad", "just a sentence\n")
    refused(
        project.cli("validate"),
        "jobs/bad.yaml:1:1: a job file holds one mapping of keys (prompt: …), not a single value",
    )


def test_non_utf8_bytes_are_located_by_line_and_character(project: Project) -> None:
    # Latin-1 "é" (0xE9) after a UTF-8 "é" (2 bytes): the column counts characters, not bytes.
    (project.root / "jobs" / "bad.yaml").write_bytes(
        b"prompt: a lighthouse\nstyle: caf\xc3\xa9 cr\xe8me\n"
    )
    refused(project.cli("validate"), "jobs/bad.yaml:2:15: file is not UTF-8 text; save it as UTF-8")


def test_a_utf8_byte_order_mark_is_fine(project: Project) -> None:
    (project.root / "jobs" / "bom.yaml").write_bytes("\ufeffprompt: café\n".encode())
    accepted(project.cli("validate"), "ok  jobs/bom.yaml: bom (3 scenes, 16:9, local)")


def test_duplicate_keys_are_refused(project: Project) -> None:
    project.job("bad", "prompt: one\nstyle: noir\nprompt: two\n")
    refused(project.cli("validate"), "jobs/bad.yaml:3:1: duplicate key 'prompt'")


def test_python_tags_are_refused_and_never_executed(project: Project) -> None:
    project.job("bad", 'prompt: !!python/object/apply:os.system ["touch pwned"]\n')
    result = project.cli("validate")
    refused(
        result,
        "jobs/bad.yaml:1:9: tag !!python/object/apply:os.system is not allowed in vidpipe files",
    )
    assert not (project.root / "pwned").exists()
    assert not (project.root / "jobs" / "pwned").exists()


def test_other_unsafe_tags_are_refused(project: Project) -> None:
    project.job("bad", "prompt: hi\nvars:\n  x: !!python/name:os.system\n")
    refused(
        project.cli("validate"),
        "jobs/bad.yaml:3:6: tag !!python/name:os.system is not allowed in vidpipe files",
    )


BILLION_LAUGHS = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
prompt: hi
"""


def test_an_alias_bomb_is_refused_within_seconds(project: Project) -> None:
    project.job("bomb", BILLION_LAUGHS)
    started = time.monotonic()
    result = project.cli("validate")
    elapsed = time.monotonic() - started
    assert elapsed < 5, f"took {elapsed:.1f}s"
    refused(
        result,
        "jobs/bomb.yaml:1:8: document expands to more than 50,000 values through aliases; "
        "refusing it (is this an alias bomb?)",
    )


def test_a_merge_key_bomb_is_refused_within_seconds(project: Project) -> None:
    # `<<` merges repeat the same pair 9**9 times without building new values.
    lines = ["l0: &l0 {k: v}"]
    lines += [f"l{i}: &l{i} {{<<: [{', '.join([f'*l{i - 1}'] * 9)}]}}" for i in range(1, 10)]
    project.job("bomb", "\n".join([*lines, "prompt: hi", ""]))
    started = time.monotonic()
    result = project.cli("validate")
    assert time.monotonic() - started < 5
    assert result.exit_code == 2, result.output
    assert "through aliases; refusing it (is this an alias bomb?)" in result.output
    assert "Traceback" not in result.output


def test_a_recursive_merge_is_refused(project: Project) -> None:
    project.job("bad", "base: &b {style: noir, <<: *b}\nprompt: hi\n")
    refused(
        project.cli("validate"),
        "jobs/bad.yaml:1:7: a `<<` merge includes itself (a recursive alias)",
    )


def test_deep_nesting_is_refused_not_a_recursion_error(project: Project) -> None:
    # 600 levels exhaust the stack in PyYAML's recursive composer (a RecursionError before
    # the fix); had it coped, the 64-level check would refuse it, located.
    project.job("bad", "prompt: hi\nvars:\n  x: " + "[" * 600 + "]" * 600 + "\n")
    result = project.cli("validate")
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert re.fullmatch(
        r"jobs/bad\.yaml(:\d+:\d+)?: nesting deeper than 64 levels.*\n"
        r"1 problem found; nothing was run\.\n",
        result.output,
    ), result.output


def test_merge_keys_and_anchors_still_work(project: Project) -> None:
    project.job(
        "merged",
        "prompt: hi\nscenes: 2\nscene_overrides:\n"
        "  - &first {index: 0, scene_description: Dawn over the bay}\n"
        "  - {<<: *first, index: 1}\n",
    )
    accepted(project.cli("validate"), "ok  jobs/merged.yaml: merged (2 scenes, 16:9, local)")


# -- schema ----------------------------------------------------------------------------------


def test_a_missing_prompt(project: Project) -> None:
    project.job("bad", "style: noir\nscenes: 2\n")
    refused(project.cli("validate"), "jobs/bad.yaml:1:1: missing required key 'prompt'")


def test_an_empty_prompt(project: Project) -> None:
    project.job("bad", 'prompt: ""\n')
    refused(project.cli("validate"), "jobs/bad.yaml:1:9: prompt must not be empty")


def test_a_wrong_type_is_located_at_the_value(project: Project) -> None:
    project.job("bad", "prompt: A lighthouse\nscenes: three\n")
    refused(
        project.cli("validate"), "jobs/bad.yaml:2:9: scenes must be an integer (got text 'three')"
    )


def test_a_wrong_type_in_a_nested_mapping(project: Project) -> None:
    project.job("bad", "prompt: hi\nstitch:\n  crossfade: soon\n")
    refused(
        project.cli("validate"),
        "jobs/bad.yaml:3:14: stitch.crossfade must be a number (got text 'soon')",
    )


def test_an_unknown_key_suggests_the_right_one(project: Project) -> None:
    project.job("bad", "prompt: A lighthouse\nstyel: noir\n")
    refused(
        project.cli("validate"), "jobs/bad.yaml:2:1: unknown key 'styel'; did you mean 'style'?"
    )


def test_an_unknown_nested_key_suggests_the_right_one(project: Project) -> None:
    project.job("bad", "prompt: hi\nstitch:\n  crossfde: 0.5\n")
    refused(
        project.cli("validate"),
        "jobs/bad.yaml:3:3: unknown key 'crossfde' in stitch; did you mean 'crossfade'?",
    )


def test_an_unknown_key_without_a_near_match_lists_the_allowed_keys(project: Project) -> None:
    project.job("bad", "prompt: hi\nstitch:\n  zzz: 1\n")
    refused(
        project.cli("validate"),
        "jobs/bad.yaml:3:3: unknown key 'zzz' in stitch; allowed keys: audio, crossfade",
    )


def test_an_aspect_ratio_outside_the_enum(project: Project) -> None:
    project.job("bad", 'prompt: hi\naspect_ratio: "4:3"\n')
    refused(
        project.cli("validate"),
        "jobs/bad.yaml:2:15: aspect_ratio must be one of 16:9, 9:16, 1:1 (got '4:3')",
    )


def test_an_invalid_job_name(project: Project) -> None:
    project.job("bad", "name: My Job\nprompt: hi\n")
    refused(
        project.cli("validate"),
        "jobs/bad.yaml:1:7: name 'My Job' is not a valid job name: use 1-64 lowercase letters, "
        "digits, '.', '_' or '-', starting with a letter or digit",
    )


def test_a_file_name_that_is_not_a_job_name_asks_for_name(project: Project) -> None:
    project.job("My Job", "prompt: hi\n")
    refused(
        project.cli("validate"),
        "jobs/My Job.yaml:1:1: job name 'My Job' (from the file name) is not a valid job name; "
        "add `name:` with 1-64 lowercase letters, digits, '.', '_' or '-'",
    )


def test_zero_scenes(project: Project) -> None:
    project.job("bad", "prompt: hi\nscenes: 0\n")
    refused(project.cli("validate"), "jobs/bad.yaml:2:9: scenes must be at least 1 (got 0)")


def test_more_scenes_than_the_built_in_max_scenes(project: Project) -> None:
    project.job("bad", "prompt: hi\nscenes: 16\n")
    project.job("fifteen", "prompt: hi\nscenes: 15\n")
    refused(
        project.cli("validate", "jobs/bad.yaml"),
        "jobs/bad.yaml:2:9: 16 scenes is more than max_scenes (15); lower it or raise "
        "max_scenes in vidpipe.yaml",
    )
    accepted(
        project.cli("validate", "jobs/fifteen.yaml"),
        "ok  jobs/fifteen.yaml: fifteen (15 scenes, 16:9, local)",
    )


def test_max_scenes_from_vidpipe_yaml(project: Project) -> None:
    project.write("vidpipe.yaml", "max_scenes: 4\n")
    project.job("bad", "prompt: hi\nscenes: 5\n")
    refused(
        project.cli("validate"),
        "jobs/bad.yaml:2:9: 5 scenes is more than max_scenes (4); lower it or raise "
        "max_scenes in vidpipe.yaml",
    )


def test_too_many_scenes_from_duration_is_located_at_duration(project: Project) -> None:
    project.job("bad", "prompt: hi\nclip_duration: 4\nduration: 100\n")
    refused(
        project.cli("validate"),
        "jobs/bad.yaml:3:11: 25 scenes is more than max_scenes (15); lower it or raise "
        "max_scenes in vidpipe.yaml",
    )


def test_scenes_and_duration_together(project: Project) -> None:
    project.job("bad", "prompt: hi\nscenes: 2\nduration: 8\n")
    refused(project.cli("validate"), "jobs/bad.yaml:3:11: give `scenes` or `duration`, not both")


def test_duration_sets_the_scene_count(project: Project) -> None:
    project.job("timed", "prompt: hi\nclip_duration: 4\nduration: 18\n")
    accepted(project.cli("validate"), "ok  jobs/timed.yaml: timed (4 scenes, 16:9, local)")


# -- paths -----------------------------------------------------------------------------------


def test_an_output_path_leaving_the_project(project: Project) -> None:
    # Paths are relative to the job file's folder: from jobs/, `../../` leaves the project.
    project.job("bad", "prompt: hi\noutput: ../../x.mp4\n")
    refused(
        project.cli("validate"),
        f"jobs/bad.yaml:2:9: output path '../../x.mp4' leaves the project folder {project.root}",
    )


def test_an_output_path_leaving_the_project_from_a_job_at_the_root(project: Project) -> None:
    project.write("top.yaml", "prompt: hi\noutput: ../x.mp4\n")
    refused(
        project.cli("validate", "top.yaml"),
        f"top.yaml:2:9: output path '../x.mp4' leaves the project folder {project.root}",
    )


def test_an_output_path_up_one_folder_from_jobs_stays_inside(project: Project) -> None:
    project.job("fine", "prompt: hi\noutput: ../x.mp4\n")
    accepted(project.cli("validate"), "ok  jobs/fine.yaml: fine (3 scenes, 16:9, local)")


def test_an_absolute_output_path(project: Project, tmp_path: Path) -> None:
    target = tmp_path / "x.mp4"
    project.job("bad", f"prompt: hi\noutput: {target}\n")
    refused(
        project.cli("validate"),
        f"jobs/bad.yaml:2:9: output path '{target}' must be relative to the job file, not absolute",
    )


def test_a_template_path_leaving_the_project(project: Project) -> None:
    project.job("bad", "prompt: hi\ntemplates:\n  motion: ../../motion.j2\n")
    refused(
        project.cli("validate"),
        f"jobs/bad.yaml:3:11: template path '../../motion.j2' leaves the project folder {project.root}",
    )


def test_an_absolute_template_path(project: Project) -> None:
    project.job("bad", "prompt: hi\ntemplates:\n  motion: /etc/passwd\n")
    refused(
        project.cli("validate"),
        "jobs/bad.yaml:3:11: template path '/etc/passwd' must be relative, not absolute",
    )


def test_a_scene_override_index_out_of_range(project: Project) -> None:
    project.job(
        "bad",
        "prompt: hi\nscenes: 2\nscene_overrides:\n  - index: 2\n    scene_description: x\n",
    )
    refused(
        project.cli("validate"),
        "jobs/bad.yaml:4:12: scene_overrides[0].index is 2, but the job has 2 scene(s) "
        "(indexes 0 to 1)",
    )


def test_a_scene_overridden_twice(project: Project) -> None:
    project.job(
        "bad",
        "prompt: hi\nscene_overrides:\n"
        "  - {index: 1, scene_description: x}\n  - {index: 1, transition_notes: y}\n",
    )
    refused(project.cli("validate"), "jobs/bad.yaml:4:13: scene 1 is overridden twice")


def test_a_missing_start_image(project: Project) -> None:
    project.job(
        "bad", "prompt: hi\nscene_overrides:\n  - index: 0\n    start_image: frames/first.png\n"
    )
    refused(
        project.cli("validate"),
        "jobs/bad.yaml:4:18: image 'frames/first.png' does not exist; image paths are relative "
        "to the job file's folder (jobs/)",
    )


def test_a_fake_png_is_refused(project: Project) -> None:
    project.write("jobs/frames/first.png", "this is text, not a picture\n")
    project.job(
        "bad", "prompt: hi\nscene_overrides:\n  - index: 0\n    start_image: frames/first.png\n"
    )
    refused(
        project.cli("validate"),
        "jobs/bad.yaml:4:18: image 'frames/first.png' is not a readable PNG or JPEG image",
    )


def test_an_image_that_is_not_png_or_jpeg_by_name(project: Project) -> None:
    project.write("jobs/frames/first.gif", "GIF89a")
    project.job(
        "bad", "prompt: hi\nscene_overrides:\n  - index: 0\n    end_image: frames/first.gif\n"
    )
    refused(
        project.cli("validate"),
        "jobs/bad.yaml:4:16: image 'frames/first.gif' must be a .png, .jpg or .jpeg file",
    )


def test_an_image_outside_the_project(project: Project, tmp_path: Path) -> None:
    (tmp_path / "outside.png").write_bytes(png_bytes())
    project.job(
        "bad", "prompt: hi\nscene_overrides:\n  - index: 0\n    start_image: ../../outside.png\n"
    )
    refused(
        project.cli("validate"),
        f"jobs/bad.yaml:4:18: image path '../../outside.png' leaves the project folder {project.root}",
    )


def test_a_real_start_image_is_accepted(project: Project) -> None:
    (project.root / "jobs" / "frames").mkdir()
    (project.root / "jobs" / "frames" / "first.png").write_bytes(png_bytes())
    project.job(
        "good", "prompt: hi\nscene_overrides:\n  - index: 0\n    start_image: frames/first.png\n"
    )
    accepted(project.cli("validate"), "ok  jobs/good.yaml: good (3 scenes, 16:9, local)")


# -- providers -------------------------------------------------------------------------------


def test_an_unknown_provider_is_one_problem(project: Project) -> None:
    project.job("bad", "prompt: hi\nprovider: veo-local\n")
    refused(
        project.cli("validate"),
        "jobs/bad.yaml:2:11: unknown provider 'veo-local'; known providers: google, local",
    )


def test_an_unknown_provider_for_one_step(project: Project) -> None:
    project.job("bad", "prompt: hi\nprovider:\n  storyboard: local\n  video: runway\n")
    refused(
        project.cli("validate"),
        "jobs/bad.yaml:4:10: unknown provider 'runway' for video; known providers: google, local",
    )


def test_an_unknown_provider_flag_is_reported_once_not_per_job(project: Project) -> None:
    project.job("one", "prompt: hi\n")
    project.job("two", "prompt: hi\n")
    refused(
        project.cli("validate", "--provider", "runway"),
        "--provider: unknown provider 'runway'; known providers: google, local",
    )


def test_a_provider_that_is_not_a_name(project: Project) -> None:
    project.job("bad", "prompt: hi\nprovider: [local]\n")
    refused(
        project.cli("validate"),
        "jobs/bad.yaml:2:11: provider must be a provider name, or a mapping of "
        "storyboard/image/video to provider names",
    )


# -- matrix ----------------------------------------------------------------------------------


def test_an_empty_matrix(project: Project) -> None:
    project.job("bad", "prompt: hi\nmatrix: {}\n")
    refused(
        project.cli("validate"),
        "jobs/bad.yaml:2:9: matrix is empty: give at least one key with a list of values",
    )


def test_a_matrix_key_with_no_values(project: Project) -> None:
    project.job("bad", "prompt: hi\nmatrix:\n  style: []\n")
    refused(
        project.cli("validate"), "jobs/bad.yaml:3:10: matrix.style has no values: give at least one"
    )


def test_a_matrix_key_that_is_not_a_list(project: Project) -> None:
    project.job("bad", "prompt: hi\nmatrix:\n  style: noir\n")
    refused(
        project.cli("validate"), "jobs/bad.yaml:3:10: matrix.style must be a list (got text 'noir')"
    )


def test_a_matrix_over_an_unknown_key_suggests_the_right_one(project: Project) -> None:
    project.job("bad", "prompt: hi\nmatrix:\n  stlye: [noir, anime]\n")
    refused(
        project.cli("validate"),
        "jobs/bad.yaml:3:3: matrix cannot vary 'stlye'; did you mean 'style'?",
    )


def test_a_matrix_over_a_key_that_cannot_vary(project: Project) -> None:
    project.job("bad", "prompt: hi\nmatrix:\n  output: [a.mp4, b.mp4]\n")
    refused(
        project.cli("validate"),
        "jobs/bad.yaml:3:3: matrix cannot vary 'output'; it can vary: prompt, style, "
        "aspect_ratio, clip_duration, scenes, duration, provider, models, vars, templates, "
        "stitch, seed, negative_prompt, generate_audio, resolution",
    )


def test_a_matrix_with_an_unknown_provider_is_located_at_the_value(project: Project) -> None:
    project.job("bad", "prompt: hi\nmatrix:\n  provider: [local, runway]\n")
    refused(
        project.cli("validate"),
        "jobs/bad.yaml:3:21: unknown provider 'runway'; known providers: google, local",
    )


# -- the batch -------------------------------------------------------------------------------


def test_two_files_with_the_same_job_name_are_both_named(project: Project) -> None:
    project.job("a", "name: lighthouse\nprompt: one\n")
    project.job("b", "name: lighthouse\nprompt: two\n")
    message = (
        "job name 'lighthouse' is used more than once in this batch (jobs/a.yaml, jobs/b.yaml); "
        "give each job a different `name:`"
    )
    refused(project.cli("validate"), f"jobs/a.yaml:1:7: {message}", f"jobs/b.yaml:1:7: {message}")


def test_a_file_stem_clashing_with_a_name(project: Project) -> None:
    project.job("lighthouse", "prompt: one\n")
    project.job("other", "name: lighthouse\nprompt: two\n")
    result = project.cli("validate")
    assert result.exit_code == 2
    assert "(jobs/lighthouse.yaml, jobs/other.yaml)" in result.output


def test_every_problem_in_every_file_is_listed(project: Project) -> None:
    project.job("a", "prompt: hi\nscenes: 0\n")
    project.job("b", "prompt: hi\nstyel: noir\naspect_ratio: '4:3'\n")
    project.job("c", "prompt: [unclosed\n")
    project.job("d", "prompt: this one is fine\n")
    project.job("e", "")
    refused(
        project.cli("validate"),
        "jobs/a.yaml:2:9: scenes must be at least 1 (got 0)",
        "jobs/b.yaml:2:1: unknown key 'styel'; did you mean 'style'?",
        "jobs/b.yaml:3:15: aspect_ratio must be one of 16:9, 9:16, 1:1 (got '4:3')",
        "jobs/c.yaml:2:1: invalid YAML: expected ',' or ']', but got '<stream end>'",
        "jobs/e.yaml:1:1: file is empty; a job needs at least a `prompt:`",
    )


def test_folders_and_globs(project: Project) -> None:
    project.job("a", "prompt: one\n")
    project.write("jobs/more/b.yml", "prompt: two\n")
    project.write("jobs/notes.txt", "not a job\n")
    result = project.cli("validate", "jobs/**/*.yml")
    assert result.output == "ok  jobs/more/b.yml: b (3 scenes, 16:9, local)\n1 job valid.\n"
    result = project.cli("validate")
    assert result.exit_code == 0
    assert result.output.endswith("2 jobs valid.\n")


def test_a_path_that_does_not_exist(project: Project) -> None:
    refused(
        project.cli("validate", "jobs/nope.yaml", "jobs/*.yml"),
        "jobs/*.yml: no job files match this pattern",
        "jobs/nope.yaml: no such file or folder",
    )


def test_no_jobs_folder_says_what_to_do(tmp_path: Path) -> None:
    project = Project(tmp_path)
    refused(
        project.cli("validate"),
        "jobs: no jobs folder here; give job files or run `vidpipe init` first",
    )


def test_validate_in_a_subfolder_finds_the_project(project: Project) -> None:
    project.job("a", "prompt: hi\noutput: ../out/a.mp4\n")
    sub = Project(project.root / "jobs")
    result = sub.cli("validate", "a.yaml")
    assert result.exit_code == 0, result.output
    assert "ok  a.yaml: a (3 scenes, 16:9, local)" in result.output


# -- matrix expansion and naming --------------------------------------------------------------


def test_a_matrix_is_the_cartesian_product_named_in_key_order(project: Project) -> None:
    project.job(
        "promo",
        'prompt: A kite over the dunes\nscenes: 2\nmatrix:\n  aspect_ratio: ["9:16", "16:9"]\n'
        "  style: [Film Noir, anime]\n",
    )
    result = project.cli("validate")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "ok  jobs/promo.yaml: promo-9-16-film-noir (2 scenes, 9:16, local)",
        "ok  jobs/promo.yaml: promo-9-16-anime (2 scenes, 9:16, local)",
        "ok  jobs/promo.yaml: promo-16-9-film-noir (2 scenes, 16:9, local)",
        "ok  jobs/promo.yaml: promo-16-9-anime (2 scenes, 16:9, local)",
        "4 jobs valid.",
    ]


def test_matrix_suffixes_follow_the_order_the_keys_are_written(project: Project) -> None:
    project.job(
        "promo", 'prompt: hi\nmatrix:\n  style: [anime]\n  aspect_ratio: ["1:1"]\n  seed: [7]\n'
    )
    assert "ok  jobs/promo.yaml: promo-anime-1-1-7 (3 scenes, 1:1, local)" in (
        project.cli("validate").output.splitlines()
    )


def test_a_matrix_base_name_comes_from_name(project: Project) -> None:
    project.job("file", "name: launch\nprompt: hi\nmatrix:\n  generate_audio: [true, false]\n")
    assert project.cli("validate").output.splitlines() == [
        "ok  jobs/file.yaml: launch-true (3 scenes, 16:9, local)",
        "ok  jobs/file.yaml: launch-false (3 scenes, 16:9, local)",
        "2 jobs valid.",
    ]


def test_mapping_values_are_named_by_position_and_vars_merge(project: Project) -> None:
    project.job(
        "promo",
        "prompt: hi\nvars: {tone: calm, brand: Acme}\nmatrix:\n"
        "  vars:\n    - {tone: loud}\n    - {season: winter}\n",
    )
    out = project.cli("render", "jobs/promo.yaml").output
    assert "# job promo-0 (jobs/promo.yaml)" in out
    assert "# job promo-1 (jobs/promo.yaml)" in out
    notes = [line for line in out.splitlines() if line.startswith("- Project notes:")]
    assert notes == [
        "- Project notes: tone: loud; brand: Acme.",
        "- Project notes: tone: calm; brand: Acme; season: winter.",
    ]


def test_an_invalid_matrix_value_is_located_at_its_line(project: Project) -> None:
    project.job(
        "promo",
        'prompt: hi\nmatrix:\n  aspect_ratio:\n    - "9:16"\n    - "4:3"\n  scenes: [2, many]\n',
    )
    refused(
        project.cli("validate"),
        "jobs/promo.yaml:5:7: aspect_ratio must be one of 16:9, 9:16, 1:1 (got '4:3')",
        "jobs/promo.yaml:6:15: scenes must be an integer (got text 'many')",
    )


def test_a_matrix_value_over_max_scenes_is_located_at_its_line(project: Project) -> None:
    project.job("promo", "prompt: hi\nmatrix:\n  scenes:\n    - 2\n    - 40\n")
    refused(
        project.cli("validate"),
        "jobs/promo.yaml:5:7: 40 scenes is more than max_scenes (15); lower it or raise "
        "max_scenes in vidpipe.yaml",
    )


def test_matrix_values_that_slugify_to_the_same_name(project: Project) -> None:
    project.job("promo", 'prompt: hi\nmatrix:\n  style: ["Film Noir", film-noir]\n')
    refused(
        project.cli("validate"),
        "jobs/promo.yaml:3:3: matrix gives 2 jobs the name 'promo-film-noir' "
        "(style='Film Noir'; style='film-noir'); make the values differ in their letters or digits",
    )


def test_cached_schema_results_are_located_afresh(project: Project) -> None:
    # The second run reads the schema check's result from the cache (no jsonschema):
    # the same problems, located in the file as it is now.
    project.job("bad", "prompt: x\nscenes: many\n")
    first = project.cli("validate", "jobs/bad.yaml")
    assert first.exit_code == 2 and "jobs/bad.yaml:2:9:" in first.output
    assert project.cli("validate", "jobs/bad.yaml").output == first.output
    project.job("bad", "# moved down a line\nprompt: x\nscenes: many\n")
    moved = project.cli("validate", "jobs/bad.yaml")
    assert "jobs/bad.yaml:3:9:" in moved.output
    assert moved.output.replace(":3:9:", ":2:9:") == first.output
    cached = list((Path.home() / ".cache" / "vidpipe" / "schema").glob("*/*"))
    assert cached, "results were cached under the (test) home"
    project.job("bad", "prompt: x\nscenes: 2\n")
    assert project.cli("validate", "jobs/bad.yaml").exit_code == 0
