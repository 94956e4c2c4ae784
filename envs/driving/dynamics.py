"""Motion of the driving task: the ego car's bicycle model and one step of the other cars.

Pure and written for ONE environment on NumPy or JAX arrays (``traffic.namespace``), like
:mod:`envs.driving.core`, whose :func:`~envs.driving.core.transition` composes the two moves with
the traffic's random draws and the task. The ego car's move is differentiable in its command.

Ego car: kinematic bicycle model (Rajamani, "Vehicle Dynamics and Control", 2012, sec. 2.2)
about the rear axle, one explicit step per ``dt``:
    v' = clip(v + accel dt, 0, max_speed);  heading' = heading + v' tan(steer) / wheelbase dt
    position' = position + v' (cos heading', sin heading') dt

The other cars follow the IDM, change lanes at random when it is safe, and a car that leaves the
window around the ego car re-enters at its far end (:mod:`envs.driving.traffic`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from envs.driving import traffic
from envs.driving.params import DrivingParams

if TYPE_CHECKING:
    from envs.driving.core import DrivingState


def move_ego(state: DrivingState, command: Any, params: DrivingParams) -> tuple[Any, Any, Any]:
    """One bicycle-model step of the ego car: ``(position (2,), heading (), speed ())``.

    Args:
        state: current state.
        command: (2,) acceleration and steering commands in [-1, 1] (+1: full throttle / left).
        params: car constants.
    """
    xp = traffic.namespace(state.ego_speed)
    throttle, steer = command[0], command[1]
    accel = xp.where(throttle >= 0, throttle * params.max_accel, throttle * params.max_brake)
    speed = xp.clip(state.ego_speed + accel * params.dt, 0.0, params.max_speed)
    heading = (
        state.ego_heading + speed * xp.tan(steer * params.max_steer) / params.wheelbase * params.dt
    )
    step = speed * params.dt
    position = state.ego_position + xp.stack([step * xp.cos(heading), step * xp.sin(heading)])
    return position.astype(xp.float32), heading.astype(xp.float32), speed.astype(xp.float32)


def move_traffic(state: DrivingState, draws: Any, params: DrivingParams) -> DrivingState:
    """One step of the other cars, decided from ``state`` (the ego car as it was) and moved.

    Returns:
        ``state`` with the cars' fields updated (the ego car and key untouched).
    """
    xp = traffic.namespace(state.car_speed)
    ego_vx = state.ego_speed * xp.cos(state.ego_heading)
    vehicle_x = xp.concatenate([state.car_position[:, 0], state.ego_position[:1]])
    vehicle_y = xp.concatenate([state.car_position[:, 1], state.ego_position[1:]])
    vehicle_speed = xp.concatenate([state.car_speed, ego_vx[None]])
    desired = xp.concatenate([state.car_desired_speed, xp.full((1,), params.max_speed, xp.float32)])
    accel = traffic.follow(
        vehicle_x, vehicle_y, vehicle_speed, state.car_lane, state.car_desired_speed, params
    )
    lane = traffic.lane_change(
        state.car_lane, vehicle_x, vehicle_y, vehicle_speed, desired, draws[:3], params
    )
    speed = xp.maximum(state.car_speed + accel * params.dt, 0.0)
    car_x = state.car_position[:, 0] + speed * params.dt
    offset = traffic.lane_centre(lane, params) - state.car_position[:, 1]
    lateral = params.lateral_speed * params.dt
    car_y = state.car_position[:, 1] + xp.clip(offset, -lateral, lateral)
    car_x, car_y, speed, desired_cars, lane = traffic.recycle(
        car_x,
        car_y,
        speed,
        state.car_desired_speed,
        lane,
        state.ego_position[0],
        state.ego_position[1],
        draws[3],
        params,
    )
    return state.replace(
        car_position=xp.stack([car_x, car_y], axis=-1).astype(xp.float32),
        car_speed=speed.astype(xp.float32),
        car_desired_speed=desired_cars.astype(xp.float32),
        car_lane=lane.astype(xp.int32),
    )
