"""`predict compare V1 V2 IMAGE...`: two model versions on the same images, their boxes paired.

Boxes are paired as export's check pairs them (`export_check.pair_boxes`: same class, IoU of
0.5 or more, each box in one pair at most); what is left are the boxes only one version finds.
"""
from __future__ import annotations

import base64
import io
from dataclasses import dataclass, field
from typing import Optional

from ..errors import UsageError
from ..events import Event, emitter
from ..render import Result
from . import export_check
from .predict import _check_images, detections_of, image_labels, load

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import os
    from typing import Iterable
    from ..core.workspace import Workspace
    from ..events import EventCallback


def _mean(values) -> Optional[float]:
    values = list(values)
    return round(sum(values) / len(values), 4) if values else None


@dataclass
class PredictionComparison(Result):
    first: dict    # what V1 resolved to: ref, kind, version, weights
    second: dict
    conf: float
    images: list = field(default_factory=list)
    _pictures: list = field(default_factory=list, repr=False)   # (V1's, V2's) annotated PNGs, base64

    def table(self):
        shown = image_labels([i["image"] for i in self.images])
        rows = [(label, len(i["first"]), len(i["second"]), i["paired"], i["only_first"],
                 i["only_second"], i["mean_iou"], i["mean_confidence_change"]) for label, i in zip(shown, self.images)]
        return ["image", "V1 boxes", "V2 boxes", "paired", "only V1", "only V2", "mean IoU of pairs",
                "mean confidence change (V2 - V1)"], rows

    def totals(self) -> dict:
        return {key: sum(i[key] for i in self.images) for key in ("paired", "only_first", "only_second")}

    def summary(self) -> str:
        t = self.totals()
        return (f"V1 {self.first['ref']} vs V2 {self.second['ref']} on {len(self.images)} image(s) at conf "
                f"{self.conf}: {t['paired']} box(es) in both (same class, IoU >= {export_check.PAIR_IOU}), "
                f"{t['only_first']} only in V1, {t['only_second']} only in V2")

    def extra_html(self) -> str:
        import html

        cells = []
        for (left, right), label in zip(self._pictures, image_labels([i["image"] for i in self.images])):
            pair = "".join(f"<figure style='display:inline-block;margin:2px'><img style='max-width:280px' "
                           f"src='data:image/png;base64,{picture}'/><figcaption class='nbv-note'>"
                           f"{html.escape(ref)}</figcaption></figure>"
                           for picture, ref in ((left, f"V1 {self.first['ref']}"), (right, f"V2 {self.second['ref']}")))
            cells.append(f"<div><div class='nbv-title'>{html.escape(label)}</div>{pair}</div>")
        return "".join(cells)

    def to_dict(self) -> dict:
        return {"first": self.first, "second": self.second, "conf": self.conf, "images": self.images,
                "totals": self.totals()}


def _png(array) -> str:
    from PIL import Image

    picture = Image.fromarray(array)
    picture.thumbnail((560, 560))   # two per image side by side: keep the notebook light
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def compare(ws: Workspace, first: str, second: str, images: Iterable[str | os.PathLike], conf: float = 0.25,
            iou: float = 0.7, imgsz: Optional[int] = None,
            on_event: Optional[EventCallback] = None) -> PredictionComparison:
    """Run two model versions on the same images and pair their boxes (`nbversion predict compare`).

    Args:
        first: a MODEL_REF (run id, weights file, NAME@vX.Y.Z, NAME@champion...).
        second: another MODEL_REF.
        images: paths of the images.
        conf: confidence threshold of both.
        iou: IoU threshold of non-maximum suppression.
        imgsz: inference size (default: each model's).
        on_event: called with progress `Event`s.

    Returns:
        PredictionComparison: per image the detections of each, the boxes paired (same class,
        IoU >= 0.5), those only one version finds, and the mean confidence change (second - first).

    Example:
        >>> ws = nbv.open(".")
        >>> ws.predict_compare("det@v1.0.0", "det@v1.1.0", ["street.jpg"])
    """
    from . import _yolo

    emit = emitter(on_event)
    images = list(images)
    if not images:
        raise UsageError("predict compare needs images", hint="predict compare V1 V2 IMAGE [IMAGE...]")
    loaded = [load(ws, ref, imgsz) for ref in (first, second)]   # both refs checked before any inference
    paths = _check_images(images)
    found = []
    for step, (ref, (weights, task, _)) in enumerate(zip((first, second), loaded)):
        emit(Event("predict compare", step, 2, ref))
        found.append(_yolo.predict(weights, paths, conf, iou, imgsz, task))
    emit(Event("predict compare", 2, 2, "done"))
    sides = [{**source, "ref": ref, "weights": weights} for ref, (weights, _, source) in zip((first, second), loaded)]
    result = PredictionComparison(sides[0], sides[1], conf)
    for path, left, right in zip(paths, *found):
        overlaps = export_check.pair_boxes(left["boxes"], right["boxes"])
        before, after = detections_of(left["boxes"]), detections_of(right["boxes"])
        mean_before, mean_after = _mean(b["confidence"] for b in before), _mean(b["confidence"] for b in after)
        change = round(mean_after - mean_before, 4) if None not in (mean_before, mean_after) else None
        result.images.append({"image": str(path), "first": before, "second": after, "paired": len(overlaps),
                              "only_first": len(before) - len(overlaps), "only_second": len(after) - len(overlaps),
                              "mean_iou": _mean(overlaps), "mean_confidence_first": mean_before,
                              "mean_confidence_second": mean_after, "mean_confidence_change": change})
        result._pictures.append((_png(left["annotated"]), _png(right["annotated"])))
    return result
