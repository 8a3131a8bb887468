"""The rooms ray caster against hand computation: rays meeting a plane, a sphere, a box and a
cylinder; cameras on the ring facing the centre; a room turned with its camera looks the same;
masks partition each view and colours follow them; scenes are functions of the index."""

import math

import numpy as np
import pytest
import torch

from replab.data import make_dataset
from replab.data.rooms import (
    AMBIENT,
    EYE_HEIGHT,
    FAR,
    LIGHT,
    RING,
    VIEWS,
    Scenes,
    camera_rays,
    hit_box,
    hit_cylinder,
    hit_plane,
    hit_sphere,
    poses,
    render,
    scene_of,
)


def ray(origin, direction):
    d = torch.tensor(direction, dtype=torch.float64)
    return torch.tensor([origin], dtype=torch.float64), (d / d.norm())[None]


def f64(*values):
    return torch.tensor(values, dtype=torch.float64)


def test_a_ray_meets_a_plane_in_front_of_it_only():
    up = f64(0.0, 1.0, 0.0)
    o, d = ray((0.0, 2.0, 0.0), (0.0, -1.0, 0.0))
    assert hit_plane(o, d, up, 0.0).item() == pytest.approx(2.0)
    o, d = ray((0.0, 2.0, 0.0), (3.0, -4.0, 0.0))  # slanted: 2 / (4/5)
    assert hit_plane(o, d, up, 0.0).item() == pytest.approx(2.5)
    assert hit_plane(*ray((0.0, 2.0, 0.0), (0.0, 1.0, 0.0)), up, 0.0).item() == FAR  # behind
    assert hit_plane(*ray((0.0, 2.0, 0.0), (1.0, 0.0, 0.0)), up, 0.0).item() == FAR  # parallel


def test_a_ray_meets_a_sphere_at_its_nearer_crossing():
    centre, radius = f64(5.0, 0.0, 0.0), f64(1.0)
    assert hit_sphere(*ray((0.0, 0.0, 0.0), (1.0, 0.0, 0.0)), centre, radius).item() == 4.0
    # off the axis by 0.6: the chord's half is 0.8
    t = hit_sphere(*ray((0.0, 0.6, 0.0), (1.0, 0.0, 0.0)), centre, radius).item()
    assert t == pytest.approx(4.2)
    assert hit_sphere(*ray((0.0, 1.5, 0.0), (1.0, 0.0, 0.0)), centre, radius).item() == FAR
    assert hit_sphere(*ray((0.0, 0.0, 0.0), (-1.0, 0.0, 0.0)), centre, radius).item() == FAR


def test_a_ray_enters_a_box_through_the_face_it_meets():
    centre, half, height = f64(0.0, 0.0), f64(1.0), f64(2.0)
    t, normal = hit_box(*ray((-5.0, 1.0, 0.0), (1.0, 0.0, 0.0)), centre, half, height, f64(0.0))
    assert t.item() == pytest.approx(4.0)
    torch.testing.assert_close(normal[0], f64(-1.0, 0.0, 0.0))
    t, normal = hit_box(*ray((0.2, 5.0, 0.3), (0.0, -1.0, 0.0)), centre, half, height, f64(0.0))
    assert t.item() == pytest.approx(3.0)  # the top, at height 2
    torch.testing.assert_close(normal[0], f64(0.0, 1.0, 0.0))
    # turned by 45 degrees a corner points at the ray: it is met sqrt(2) from the centre
    turned = f64(math.pi / 4)
    t, normal = hit_box(*ray((-5.0, 1.0, 0.01), (1.0, 0.0, 0.0)), centre, half, height, turned)
    assert t.item() == pytest.approx(5 - math.sqrt(2) + 0.01, abs=1e-9)
    torch.testing.assert_close(normal[0], f64(-math.sqrt(0.5), 0.0, math.sqrt(0.5)))
    # a box standing on the floor is not met below the floor
    assert (
        hit_box(*ray((-5.0, -0.5, 0.0), (1.0, 0.0, 0.0)), centre, half, height, f64(0.0))[0].item()
        == FAR
    )


def test_a_ray_meets_a_cylinder_on_its_side_or_its_top():
    centre, radius, height = f64(0.0, 0.0), f64(1.0), f64(1.0)
    t, normal = hit_cylinder(*ray((-5.0, 0.5, 0.0), (1.0, 0.0, 0.0)), centre, radius, height)
    assert t.item() == pytest.approx(4.0)
    torch.testing.assert_close(normal[0], f64(-1.0, 0.0, 0.0))
    t, normal = hit_cylinder(*ray((0.5, 3.0, 0.0), (0.0, -1.0, 0.0)), centre, radius, height)
    assert t.item() == pytest.approx(2.0)
    torch.testing.assert_close(normal[0], f64(0.0, 1.0, 0.0))
    assert (
        hit_cylinder(*ray((-5.0, 1.5, 0.0), (1.0, 0.0, 0.0)), centre, radius, height)[0].item()
        == FAR
    )  # above it


def test_cameras_stand_on_the_ring_and_face_the_centre():
    yaw = torch.tensor([0.3, 2.0, 4.5], dtype=torch.float64)
    pose = poses(torch.stack([yaw, torch.zeros_like(yaw)], -1))
    torch.testing.assert_close(
        pose[:, [0, 2]].norm(dim=1), torch.full((3,), RING, dtype=torch.float64)
    )
    assert (pose[:, 1] == EYE_HEIGHT).all()
    origins, dirs = camera_rays(pose, image=2)  # the four rays around the optical axis
    axis = dirs.mean(1)
    axis = axis / axis.norm(dim=1, keepdim=True)
    torch.testing.assert_close(axis, -pose[:, :3] * torch.tensor([1.0, 0.0, 1.0]) / RING)
    torch.testing.assert_close(origins[:, 0], pose[:, :3])


def empty_room(floor=(0.2, 0.4, 0.6), walls=((0.9, 0.1, 0.1),) * 4) -> Scenes:
    none = np.full((1, 3), -1)
    zeros = np.zeros((1, 3))
    return Scenes(np.array([floor]), np.array([walls]), none, np.zeros((1, 3, 3)),
                  np.zeros((1, 3, 2)), zeros, zeros, zeros)  # fmt: skip


def test_an_empty_room_shows_its_floor_and_walls_lit_by_hand():
    pose = poses(torch.tensor([[[0.0, -0.45]]], dtype=torch.float64))
    x, masks = render(empty_room(), pose, image=16)
    assert (masks == 0).all()
    light = torch.tensor(LIGHT) / torch.tensor(LIGHT).norm()
    floor = torch.tensor([0.2, 0.4, 0.6]) * (AMBIENT + (1 - AMBIENT) * light[1])
    torch.testing.assert_close(x[0, 0, :, -1, 8], floor)  # the bottom row looks at the floor
    # the top row looks at the far wall x = +W, whose inward normal is -x: unlit by the light
    wall = torch.tensor([0.9, 0.1, 0.1]) * AMBIENT
    torch.testing.assert_close(x[0, 0, :, 0, 8], wall)


def turned_by_quarter(scene: Scenes) -> Scenes:
    """The same room turned by 90 degrees about the vertical: (x, z) -> (-z, x)."""
    x, z = scene.position[..., 0], scene.position[..., 1]
    walls = scene.walls[:, [3, 2, 0, 1]]  # the wall at z = -W moves to x = +W, and so on
    return Scenes(scene.floor, walls, scene.kind, scene.colour, np.stack([-z, x], -1),
                  scene.size, scene.height, scene.turn + math.pi / 2)  # fmt: skip


def test_a_room_turned_with_its_camera_looks_the_same():
    for index in range(3):
        scene, cameras = scene_of(index)
        cameras = torch.as_tensor(cameras[None], dtype=torch.float64)
        x, masks = render(scene, poses(cameras), image=32)
        turned = cameras + torch.tensor([math.pi / 2, 0.0], dtype=torch.float64)
        light = (-LIGHT[2], LIGHT[1], LIGHT[0])  # the light turns with the room
        x2, masks2 = render(turned_by_quarter(scene), poses(turned), image=32, light=light)
        same = (x - x2).abs().amax(2) < 1e-5  # per pixel
        assert same.float().mean() > 0.999 and (masks == masks2).float().mean() > 0.999


def test_masks_partition_each_view_and_object_pixels_carry_their_colour():
    scene, cameras = scene_of(7)
    x, masks = render(scene, poses(torch.as_tensor(cameras[None])), image=32)
    count = int((scene.kind >= 0).sum())
    assert masks.min() >= 0 and masks.max() <= count and len(np.unique(masks)) > 1
    pixels = x[0].permute(0, 2, 3, 1).reshape(VIEWS, -1, 3)
    for k in range(1, count + 1):
        on = masks[0] == k
        if on.any():  # a pixel is the object's colour times one shade, the same in each channel
            ratio = pixels[on] / torch.tensor(scene.colour[0, k - 1], dtype=torch.float32)
            torch.testing.assert_close(ratio.amin(1), ratio.amax(1), rtol=1e-4, atol=1e-4)


def test_scenes_are_functions_of_the_index_and_bad_indices_are_refused():
    data = make_dataset("rooms")
    a, b = data.get_batch(np.array([5, 9])), data.get_batch(np.array([9]))
    assert a["x"].shape == (2, VIEWS, 3, 64, 64) and a["pose"].shape == (2, VIEWS, 7)
    torch.testing.assert_close(a["x"][1:], b["x"], rtol=0, atol=0)
    assert not torch.equal(a["x"][0], a["x"][1])
    assert data.segments(np.array([9])).shape == (1, VIEWS, 64 * 64)
    with pytest.raises(IndexError, match="rooms has 100000 examples; got index 100000"):
        data.get_batch(np.array([3, 100_000]))
