"""Procedural rooms seen from posed cameras (after GQN's ``rooms_ring_camera``), rendered by a
vectorised ray caster in torch: no OpenGL, the same pixels on every machine up to float rounding.

A scene is a function of its index: ``default_rng([SEED, index])`` draws a floor colour, one
colour per wall, and 1-3 objects (sphere, box or cylinder) of random colours and sizes, each in
its own cell of a 3x3 grid on the floor (jittered, so objects never overlap), then ``VIEWS``
cameras. The room is the square ``|x|, |z| < HALF_WIDTH`` with the floor at ``y = 0`` and walls
without a top; every camera stands on the ring of radius ``RING`` at height ``EYE_HEIGHT``,
turned by a random yaw so that it faces the centre, and tilted by a random pitch (downwards).

A view's pose is GQN's 7 numbers: ``(x, y, z, cos yaw, sin yaw, cos pitch, sin pitch)``; yaw is
the heading in the floor plane, ``forward = (cos pitch cos yaw, sin pitch, cos pitch sin yaw)``.
Shading is Lambertian under one directional light plus ambient light (no shadows), so that shape
shows. ``segments`` gives each view's instance masks: 0 for floor and walls, k for object k.

Batches are ``{"x": float32 [n, VIEWS, 3, S, S], "pose": float32 [n, VIEWS, 7]}`` with
``DataInfo(kind="views")``. No class label; ``scene_factors`` holds the truth per object.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from replab.data.base import DataInfo, Dataset, SceneFactors
from replab.registry import register_dataset

SEED = 20_180_615
SIZE = 100_000
VIEWS = 10
IMAGE = 64
HALF_WIDTH = 3.0
RING = 2.6
EYE_HEIGHT = 1.0
FIELD_OF_VIEW = math.radians(60.0)  # horizontal and vertical: the views are square
PITCH_RANGE = (-0.45, 0.0)  # radians, negative looks down
MAX_OBJECTS = 3
CELL = 1.4  # the 3x3 placement grid's spacing; objects are at most 0.5 wide from their centre
KINDS = ("sphere", "box", "cylinder")
LIGHT = (0.4, 1.0, 0.3)
AMBIENT = 0.45
POSE_DIM = 7
FAR = 1e4  # "no hit"


@dataclass(frozen=True)
class Scenes:
    """A batch of scenes' contents, as arrays over scenes (objects padded to ``MAX_OBJECTS``).

    ``kind`` is -1 for an absent object; positions are the (x, z) of the object's vertical axis;
    ``size`` is a sphere's or cylinder's radius and half a box's side; ``height`` is a box's or a
    cylinder's height (a sphere's diameter); ``turn`` is a box's rotation about the vertical."""

    floor: np.ndarray  # [n, 3]
    walls: np.ndarray  # [n, 4, 3]: the walls at x = +W, x = -W, z = +W, z = -W
    kind: np.ndarray  # [n, K] int64
    colour: np.ndarray  # [n, K, 3]
    position: np.ndarray  # [n, K, 2]
    size: np.ndarray  # [n, K]
    height: np.ndarray  # [n, K]
    turn: np.ndarray  # [n, K]


def scene_of(index: int) -> tuple[Scenes, np.ndarray]:
    """Scene ``index`` (a batch of one) and its cameras' (yaw, pitch) [VIEWS, 2]."""
    rng = np.random.default_rng([SEED, int(index)])
    floor, walls = rng.uniform(0, 1, 3), rng.uniform(0, 1, (4, 3))
    count = int(rng.integers(1, MAX_OBJECTS + 1))
    kind = np.full(MAX_OBJECTS, -1, dtype=np.int64)
    colour, position = np.zeros((MAX_OBJECTS, 3)), np.zeros((MAX_OBJECTS, 2))
    size, height, turn = np.zeros(MAX_OBJECTS), np.zeros(MAX_OBJECTS), np.zeros(MAX_OBJECTS)
    cells = rng.choice(9, size=count, replace=False)
    for k, cell in enumerate(cells):
        kind[k] = rng.integers(len(KINDS))
        colour[k] = rng.uniform(0, 1, 3)
        centre = (np.array([cell % 3, cell // 3]) - 1) * CELL
        position[k] = centre + rng.uniform(-0.15, 0.15, 2)
        size[k] = rng.uniform(0.3, 0.5)
        height[k] = 2 * size[k] if KINDS[kind[k]] == "sphere" else rng.uniform(0.4, 1.2)
        turn[k] = rng.uniform(0, math.pi / 2) if KINDS[kind[k]] == "box" else 0.0
    cameras = np.stack([rng.uniform(0, 2 * math.pi, VIEWS), rng.uniform(*PITCH_RANGE, VIEWS)], 1)
    scene = Scenes(floor[None], walls[None], kind[None], colour[None], position[None],
                   size[None], height[None], turn[None])  # fmt: skip
    return scene, cameras


def stack_scenes(scenes: list[Scenes]) -> Scenes:
    return Scenes(
        *(np.concatenate([getattr(s, f) for s in scenes]) for f in Scenes.__dataclass_fields__)
    )


def poses(cameras: torch.Tensor) -> torch.Tensor:
    """GQN's 7-d poses [..., 7] of cameras (yaw, pitch) [..., 2] on the ring facing the centre."""
    yaw, pitch = cameras.unbind(-1)
    x, z = -RING * torch.cos(yaw), -RING * torch.sin(yaw)
    y = torch.full_like(yaw, EYE_HEIGHT)
    return torch.stack([x, y, z, yaw.cos(), yaw.sin(), pitch.cos(), pitch.sin()], -1)


def camera_rays(pose: torch.Tensor, image: int = IMAGE) -> tuple[torch.Tensor, torch.Tensor]:
    """Ray origins and unit directions [..., image*image, 3] of cameras with poses [..., 7],
    row by row from the top left pixel (a pinhole camera with ``FIELD_OF_VIEW``)."""
    cy, sy, cp, sp = pose[..., 3], pose[..., 4], pose[..., 5], pose[..., 6]
    forward = torch.stack([cp * cy, sp, cp * sy], -1)
    right = torch.stack([-sy, torch.zeros_like(sy), cy], -1)
    up = torch.linalg.cross(right, forward)
    centres = (torch.arange(image, dtype=pose.dtype) + 0.5) / image * 2 - 1
    span = math.tan(FIELD_OF_VIEW / 2)
    across = (centres * span)[None, :].expand(image, image).reshape(-1, 1)
    down = (-centres * span)[:, None].expand(image, image).reshape(-1, 1)
    dirs = forward[..., None, :] + across * right[..., None, :] + down * up[..., None, :]
    dirs = dirs / dirs.norm(dim=-1, keepdim=True)
    return pose[..., None, :3].expand_as(dirs), dirs


def hit_plane(origins, dirs, normal, offset) -> torch.Tensor:
    """Distance along each ray to the plane ``normal . p = offset`` in front of it (FAR if none)."""
    along = (dirs * normal).sum(-1)
    t = (offset - (origins * normal).sum(-1)) / torch.where(along.abs() > 1e-9, along, 1e-9)
    return torch.where((along.abs() > 1e-9) & (t > 1e-6), t, torch.full_like(t, FAR))


def hit_sphere(origins, dirs, centre, radius) -> torch.Tensor:
    """Distance to the nearer crossing of a unit-direction ray with a sphere (FAR if none)."""
    rel = origins - centre
    b = (rel * dirs).sum(-1)
    c = (rel * rel).sum(-1) - radius**2
    disc = b * b - c
    t = -b - disc.clamp(min=0).sqrt()
    return torch.where((disc >= 0) & (t > 1e-6), t, torch.full_like(t, FAR))


def _hit_slabs(lo: torch.Tensor, hi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Entry distance and axis of rays through slabs whose crossings are lo and hi [..., 3]."""
    near, axis = lo.max(-1)
    far = hi.min(-1).values
    t = torch.where((near <= far) & (near > 1e-6), near, torch.full_like(near, FAR))
    return t, axis


def hit_box(origins, dirs, centre, half, height, turn):
    """Distance and outward normal where rays enter a box standing on the floor, turned by
    ``turn`` about its vertical axis at ``centre`` (x, z), ``half`` wide each way. Per-box
    arguments broadcast against the rays' leading dimensions."""
    c, s = torch.cos(turn), torch.sin(turn)

    def into_box(vx, vy, vz):  # rotate by -turn about the vertical
        return torch.stack([c * vx + s * vz, vy, -s * vx + c * vz], -1)

    o = into_box(
        origins[..., 0] - centre[..., 0], origins[..., 1], origins[..., 2] - centre[..., 1]
    )
    d = into_box(*dirs.unbind(-1))
    low = torch.stack([-half, torch.zeros_like(half), -half], -1)
    high = torch.stack([half, height, half], -1)
    safe = torch.where(d.abs() > 1e-9, d, torch.full_like(d, 1e-9))
    a, b = (low - o) / safe, (high - o) / safe
    t, axis = _hit_slabs(torch.minimum(a, b), torch.maximum(a, b))
    facing = -torch.sign(safe.gather(-1, axis[..., None]))
    nx, ny, nz = (facing * torch.nn.functional.one_hot(axis, 3).to(d.dtype)).unbind(-1)
    normal = torch.stack([c * nx - s * nz, ny, s * nx + c * nz], -1)  # back: rotate by +turn
    return t, normal


def hit_cylinder(origins, dirs, centre, radius, height):
    """Distance and outward normal where rays meet a vertical cylinder standing on the floor
    (its side or its top cap)."""
    ox, oz = origins[..., 0] - centre[..., 0], origins[..., 2] - centre[..., 1]
    dx, dz = dirs[..., 0], dirs[..., 2]
    a = (dx * dx + dz * dz).clamp(min=1e-12)
    b = ox * dx + oz * dz
    c = ox * ox + oz * oz - radius**2
    disc = b * b - a * c
    t_side = (-b - disc.clamp(min=0).sqrt()) / a
    y_side = origins[..., 1] + t_side * dirs[..., 1]
    side_ok = (disc >= 0) & (t_side > 1e-6) & (y_side >= 0) & (y_side <= height)
    t_side = torch.where(side_ok, t_side, torch.full_like(t_side, FAR))
    up = torch.tensor([0.0, 1.0, 0.0], dtype=dirs.dtype)
    t_top = hit_plane(origins, dirs, up, height)
    px, pz = ox + t_top * dx, oz + t_top * dz
    t_top = torch.where(px * px + pz * pz <= radius**2, t_top, torch.full_like(t_top, FAR))
    side = torch.stack([ox + t_side * dx, torch.zeros_like(ox), oz + t_side * dz], -1)
    side = side / side.norm(dim=-1, keepdim=True).clamp(min=1e-9)
    normal = torch.where((t_top < t_side)[..., None], up.expand_as(side), side)
    return torch.minimum(t_top, t_side), normal


def render(scenes: Scenes, pose: torch.Tensor, image: int = IMAGE, light=LIGHT):
    """Images float32 [n, V, 3, image, image] and instance masks int64 [n, V, image*image] of
    scenes seen from poses [n, V, 7], lit from direction ``light`` (x, y, z)."""
    pose = pose.to(torch.float32)
    origins, dirs = camera_rays(pose, image)  # [n, V, P, 3]
    n, v, p, _ = dirs.shape
    f64 = {"dtype": torch.float32}
    best = torch.full((n, v, p), FAR, **f64)
    label = torch.zeros((n, v, p), dtype=torch.int64)
    normal = torch.zeros((n, v, p, 3), **f64)
    colour = torch.zeros((n, v, p, 3), **f64)

    def take(t, surface_normal, surface_colour, index):  # keep the nearer of two surfaces
        nonlocal best, label, normal, colour
        closer = t < best
        best = torch.where(closer, t, best)
        label = torch.where(closer, index, label)
        normal = torch.where(closer[..., None], surface_normal, normal)
        colour = torch.where(closer[..., None], surface_colour, colour)

    def per_scene(a):  # [n, ...] -> [n, 1, 1, ...]: broadcast over views and pixels
        return torch.as_tensor(a, **f64)[:, None, None]

    up = torch.tensor([0.0, 1.0, 0.0], **f64)
    take(hit_plane(origins, dirs, up, 0.0), up, per_scene(scenes.floor), 0)
    planes = [((1.0, 0.0, 0.0), HALF_WIDTH), ((-1.0, 0.0, 0.0), HALF_WIDTH),
              ((0.0, 0.0, 1.0), HALF_WIDTH), ((0.0, 0.0, -1.0), HALF_WIDTH)]  # fmt: skip
    for w, (direction, offset) in enumerate(planes):
        out = torch.tensor(direction, **f64)
        take(
            hit_plane(origins, dirs, out, offset),
            -out,
            per_scene(scenes.walls[:, w]),
            0,
        )
    for k in range(scenes.kind.shape[1]):
        t = torch.full((n, v, p), FAR, **f64)
        surface = torch.zeros((n, v, p, 3), **f64)
        for kind in range(len(KINDS)):  # each object's own shape only: a third of the work
            sel = torch.from_numpy(scenes.kind[:, k] == kind)
            if not sel.any():
                continue
            o, d = origins[sel], dirs[sel]
            centre = per_scene(scenes.position[sel.numpy(), k])  # [m, 1, 1, 2]: (x, z)
            size, height, turn = (
                per_scene(a[sel.numpy(), k]) for a in (scenes.size, scenes.height, scenes.turn)
            )
            if KINDS[kind] == "sphere":
                centre3 = torch.stack([centre[..., 0], size, centre[..., 1]], -1)
                t[sel] = hit_sphere(o, d, centre3, size)
                hit_point = o + t[sel][..., None].clamp(max=FAR / 2) * d
                surface[sel] = (hit_point - centre3) / size[..., None]
            elif KINDS[kind] == "box":
                t[sel], surface[sel] = hit_box(o, d, centre, size, height, turn)
            else:
                t[sel], surface[sel] = hit_cylinder(o, d, centre, size, height)
        take(t, surface, per_scene(scenes.colour[:, k]), k + 1)
    light = torch.tensor(light, **f64)
    light = light / light.norm()
    shade = AMBIENT + (1 - AMBIENT) * (normal * light).sum(-1).clamp(min=0)
    pixels = (colour * shade[..., None]).clamp(0, 1).to(torch.float32)
    pixels = pixels.reshape(n, v, image, image, 3).permute(0, 1, 4, 2, 3).contiguous()
    return pixels, label


def factors_of(scenes: Scenes) -> np.ndarray:
    """float64 [n, 6]: the number of objects, the floor's colour, and the objects' mean (x, z)."""
    present = scenes.kind >= 0
    count = present.sum(1)
    mean_xz = (scenes.position * present[..., None]).sum(1) / count[:, None]
    return np.concatenate([count[:, None], scenes.floor, mean_xz], 1).astype(np.float64)


@register_dataset("rooms")
class Rooms(SceneFactors, Dataset):
    """Rooms with 1-3 objects, 10 posed 64x64 views per scene, ray-cast (100,000 scenes)."""

    name = "rooms"
    info = DataInfo(shape=(VIEWS, 3, IMAGE, IMAGE), kind="views")
    max_objects = MAX_OBJECTS
    scene_factor_names = ["objects", "floor red", "floor green", "floor blue", "mean x", "mean z"]
    categorical_scene_factors = ("objects",)

    def __len__(self) -> int:
        return SIZE

    def scenes(self, indices) -> tuple[Scenes, torch.Tensor]:
        """The scenes at ``indices`` and their cameras' poses [n, VIEWS, 7]."""
        drawn = [scene_of(i) for i in self.checked_indices(indices)]
        if not drawn:
            raise IndexError(f"{self.name}: no indices given")
        cameras = torch.as_tensor(np.stack([c for _, c in drawn]), dtype=torch.float64)
        return stack_scenes([s for s, _ in drawn]), poses(cameras)

    def scene_factors(self, indices) -> np.ndarray:
        idx = self.checked_indices(indices)
        return (
            factors_of(stack_scenes([scene_of(i)[0] for i in idx]))
            if len(idx)
            else (np.zeros((0, len(self.scene_factor_names))))
        )

    def segments(self, indices) -> np.ndarray:
        """int64 [n, VIEWS, 64*64]: 0 for floor and walls, k for the k-th object."""
        scenes, pose = self.scenes(indices)
        return render(scenes, pose)[1].numpy()

    def get_batch(self, indices) -> dict[str, torch.Tensor]:
        scenes, pose = self.scenes(indices)
        return {"x": render(scenes, pose)[0], "pose": pose.to(torch.float32)}
