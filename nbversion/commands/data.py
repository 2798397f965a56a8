"""Dataset and model verbs: `dataset add|list|show|diff|remove|log`, `model add|list|show|compare`."""
from __future__ import annotations

from . import Verb, add_json_flag, count, typed_value


def _none(parser):
    pass


def _json_only(parser):
    # the shared parser gives `--json` to verbs, not to subverbs: `dataset list --json` needs it here
    add_json_flag(parser)


def _key_values(pairs, flag: str) -> dict:
    """`--metric k=v` pairs -> {k: number or text}; a pair without '=' is a usage error."""
    from ..errors import UsageError

    values = {}
    for pair in pairs or []:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"{flag} {pair!r}: expected key=value", hint=f"e.g. {flag} mAP50=0.71")
        values[key.strip()] = typed_value(raw.strip())
    if flag == "--metric":
        from ..core.artifacts.models import check_metrics
        check_metrics(values)   # refused here, before anything is read or written
    return values


def _dataset_add_args(p):
    add_json_flag(p)
    p.add_argument("name", metavar="NAME", help="dataset name (folder under datasets/)")
    p.add_argument("src", metavar="SRC", help="a YOLO dataset folder, a plain folder, or a .zip of either")
    p.add_argument("--tag", action="append", default=[], metavar="T", help="tag this version (repeatable)")
    p.add_argument("-m", "--message", default=None, help="commit message")
    p.add_argument("--dry-run", action="store_true", help="only validate and list every problem; write nothing")
    p.add_argument("--classes", default=None, metavar="A,B,C",
                   help="class names (ids 0, 1, ...) for a folder without data.yaml; classes.txt is read without it")
    p.add_argument("--strict", action="store_true",
                   help="refuse files that are neither images, labels nor dataset metadata (default: a warning)")


def _dataset_show_args(p):
    add_json_flag(p)
    p.add_argument("ref", metavar="NAME[@REV]", help="REV: a commit, a tag, or ~N (N versions back)")
    p.add_argument("--samples", type=count, default=6, metavar="N", help="sample images in the notebook view")


def _dataset_remove_args(p):
    add_json_flag(p)
    p.add_argument("name", metavar="NAME")
    p.add_argument("--force", action="store_true", help="remove even when the folder has uncommitted edits")
    p.add_argument("--dry-run", action="store_true", help="only say what would be removed")


def _dataset_log_args(p):
    add_json_flag(p)
    p.add_argument("name", metavar="NAME")


def _dataset_diff_args(p):
    add_json_flag(p)
    p.add_argument("name", metavar="NAME")
    p.add_argument("rev_a", metavar="REV_A", help="a commit, a tag, or ~N")
    p.add_argument("rev_b", metavar="REV_B", nargs="?", default=None, help="default: the latest version")


def _model_add_args(p):
    add_json_flag(p)
    p.add_argument("name", metavar="NAME", help="model name (folder under models/)")
    p.add_argument("file", metavar="DIR|FILE", nargs="+",
                   help="weights (.pt .pth .onnx .h5 .keras .pb .tflite .pkl .joblib .json .ubj .txt), "
                        "a folder of files, or several files of one version")
    p.add_argument("--rename", action="store_true", help="store the model file as model<suffix> (best.pt -> model.pt)")
    p.add_argument("--model-file", default=None, metavar="NAME",
                   help="which file is the model, when there is more than one")
    p.add_argument("--metric", action="append", default=[], metavar="K=V", help="a metric (repeatable)")
    p.add_argument("--param", action="append", default=[], metavar="K=V", help="a parameter (repeatable)")
    p.add_argument("--dataset", default=None, metavar="NAME[@REV]", help="dataset version it was trained on")
    p.add_argument("-m", "--message", default=None, help="commit message")


def _model_show_args(p):
    add_json_flag(p)
    p.add_argument("ref", metavar="NAME[@REV]", help="REV: a commit, a tag, or ~N (N versions back)")


def _model_compare_args(p):
    add_json_flag(p)
    p.add_argument("refs", nargs="+", metavar="NAME[@REV]", help="two or more model versions")


VERBS = [
    Verb("dataset", "datasets as versions: add, list, show, diff, remove, log", _none, None, subverbs=[
        Verb("add", "import a YOLO dataset or a folder (or .zip) as a new version", _dataset_add_args,
             lambda ws, a, ev: ws.dataset_add(a.name, a.src, tags=a.tag, message=a.message,
                                              dry_run=a.dry_run, on_event=ev, classes=a.classes,
                                              strict=a.strict)),
        Verb("list", "datasets with their latest version", _json_only, lambda ws, a, ev: ws.dataset_list()),
        Verb("show", "metadata, class histogram and samples of NAME[@REV]", _dataset_show_args,
             lambda ws, a, ev: ws.dataset_show(a.ref, samples=a.samples)),
        Verb("diff", "images and labels added / removed / changed between two versions", _dataset_diff_args,
             lambda ws, a, ev: ws.dataset_diff(a.name, a.rev_a, a.rev_b, on_event=ev)),
        Verb("remove", "remove NAME from the working tree in one commit; its history and tags stay",
             _dataset_remove_args,
             lambda ws, a, ev: ws.dataset_remove(a.name, force=a.force, dry_run=a.dry_run)),
        Verb("log", "the versions of NAME (and its removals), newest first", _dataset_log_args,
             lambda ws, a, ev: ws.dataset_log(a.name)),
    ]),
    Verb("model", "model weights as versions: add, list, show, compare", _none, None, subverbs=[
        Verb("add", "version a weights file (or a folder of files) with metrics, params and dataset lineage",
             _model_add_args,
             lambda ws, a, ev: ws.model_add(a.name, a.file[0] if len(a.file) == 1 else a.file,
                                            metrics=_key_values(a.metric, "--metric"),
                                            params=_key_values(a.param, "--param"), dataset=a.dataset,
                                            message=a.message, on_event=ev, rename=a.rename,
                                            model_file=a.model_file)),
        Verb("list", "models with their latest version", _json_only, lambda ws, a, ev: ws.model_list()),
        Verb("show", "metadata of NAME[@REV]", _model_show_args, lambda ws, a, ev: ws.model_show(a.ref)),
        Verb("compare", "metrics and params side by side, best value marked", _model_compare_args,
             lambda ws, a, ev: ws.model_compare(a.refs)),
    ]),
]
