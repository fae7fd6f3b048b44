"""What a refused capture's reasons mean, in Chinese and English: one table, code -> (zh, en).

The codes are those of ``CaptureRejected.reasons`` (facematch's ``reasons.Code``); a unit test
checks that every code facematch can emit has both texts here. Terminals, the app and consoles
show these texts to students and staff; the texts name no person and repeat no value.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

REASONS: Mapping[str, tuple[str, str]] = MappingProxyType({
    # input images
    "EMPTY_IMAGE": ("照片为空，请重新拍摄。", "The photo is empty; take it again."),
    "CORRUPT_IMAGE": ("照片文件已损坏，无法读取，请重新拍摄。",
                      "The photo file is damaged and cannot be read; take it again."),
    "UNSUPPORTED_FORMAT": ("照片格式不受支持，请使用 JPEG 或 PNG。",
                           "The photo format is not supported; use JPEG or PNG."),
    "IMAGE_TOO_SMALL": ("照片分辨率过低，请重新拍摄。", "The photo's resolution is too low; take it again."),
    "IMAGE_TOO_LARGE": ("照片尺寸过大，请降低分辨率后重新提交。",
                        "The photo is too large; send it at a lower resolution."),
    # detection
    "NO_FACE": ("未检测到人脸，请正对摄像头。", "No face was found; face the camera."),
    "MULTIPLE_FACES": ("检测到多张人脸，请确保画面中只有本人。",
                       "More than one face was found; only the student may be in the picture."),
    # quality gate
    "FACE_TOO_SMALL": ("人脸过小，请靠近摄像头。", "The face is too small; come closer to the camera."),
    "BLURRED": ("照片模糊，请保持静止后重新拍摄。", "The photo is blurred; hold still and take it again."),
    "TOO_DARK": ("光线太暗，请到光线充足处重新拍摄。", "The light is too dark; move to a brighter place."),
    "TOO_BRIGHT": ("光线过强，请避免强光直射或逆光。",
                   "The light is too bright; avoid direct light and backlight."),
    "HEAD_TURNED": ("头部偏转过大，请正对摄像头。", "The head is turned away; look straight at the camera."),
    "EYES_CLOSED": ("检测到闭眼，请睁开双眼。", "The eyes are closed; keep them open."),
    # liveness
    "LIVENESS_FRAME_COUNT": ("活体检测需要连续多张照片，请重新采集。",
                             "The liveness check needs several consecutive frames; capture again."),
    "LIVENESS_STATIC": ("未通过活体检测（画面静止，疑似翻拍照片），请本人现场采集。",
                        "Liveness check failed: the frames do not move (a photo of a photo?); "
                        "the student must be captured in person."),
    "LIVENESS_NO_ACTION": ("未检测到要求的动作（如眨眼、转头），请按提示重新采集。",
                           "The requested movement (blink, turn) was not seen;"
                           " follow the prompts and capture again."),
    "LIVENESS_IDENTITY_CHANGED": ("采集过程中人员发生变化，请本人连续完成采集。",
                                  "The person changed during the capture; one person must complete it."),
    "LIVENESS_NO_CHALLENGE": ("采集未使用服务器下发的活体动作指令，请更新终端或应用后重新采集。",
                              "The capture did not answer a liveness challenge from the server;"
                              " update the terminal or app and capture again."),
    "LIVENESS_TIMING": ("照片的拍摄时间不连续，请一次连续完成采集。",
                        "The frames' times are missing or not one continuous take; capture again in one go."),
    "LIVENESS_DISCONTINUOUS": ("照片不是同一次连续拍摄（人脸位置、背景或光线突变），请本人现场连续采集。",
                               "The frames are not one continuous take (the face, background or light"
                               " jumps); the student must be captured live in one go."),
    "LIVENESS_FLAT": ("疑似在摄像头前移动照片或屏幕，请本人现场采集。",
                      "A flat picture (a photo or a screen) seems to be moved in front of the camera;"
                      " the student must be captured in person."),
    "LIVENESS_WRONG_ACTION": ("完成的动作与提示不符，请按提示的动作重新采集。",
                              "The action shown is not the one asked for; follow the prompt and capture"
                              " again."),
    # matching
    "NO_MATCH": ("人脸与登记的人脸不一致。", "The face does not match the enrolled face."),
    "PROXY_SUSPECT": ("疑似他人代替签到：人脸与本校另一名学生相符，已记录待核查。",
                      "Suspected proxy check-in: the face matches another student of the school; "
                      "recorded for review."),
    "DUPLICATE_IDENTITY": ("该人脸已登记在另一名学生名下。",
                           "This face is already enrolled for another student."),
    "MODEL_VERSION_MISMATCH": ("人脸模板由旧版本模型生成，需要重新采集。",
                               "The face template was made by an older model; a new capture is needed."),
    "ID_PHOTO_UNUSABLE": ("身份证照片无法使用（无法读取或质量不足）。",
                          "The ID-card photo cannot be used (unreadable or of poor quality)."),
    # caller errors and storage
    "INVALID_REQUEST": ("采集请求无效，请重新采集。", "The capture request is invalid; capture again."),
    "FRAMES_MISSING": ("照片未能保存，请重新采集。", "The photos were not found in storage; capture again."),
    "NOT_ENROLLED": ("该学生尚未完成新增采集，无法比对。",
                     "The student has no face enrolment to compare with."),
    "SEAL_INVALID": ("存储的照片或模板校验失败，请联系管理员。",
                     "A stored photo or template failed its integrity check; contact the administrator."),
    "TEMPLATE_INVALID": ("存储的人脸模板无效，需要重新采集。",
                         "The stored face template is invalid; a new capture is needed."),
})

UNKNOWN = ("未通过人脸核验。", "The face check did not pass.")


def describe(code: str) -> tuple[str, str]:
    """(Chinese, English) text of a reason code; a general text for a code this table lacks."""
    return REASONS.get(code, UNKNOWN)


# What an eligibility status says of a check (``checks[].reason``: an excuse when excused, why
# when failed or pending) and of a month's grant (``grant[].rules[].rule``), in Chinese and
# English: the monthly results list and consoles show these.
CHECK_REASONS: Mapping[str, tuple[str, str]] = MappingProxyType({
    "leave": ("请假", "on leave"),
    "cognitive_internship": ("认识实习", "on a cognitive internship"),
    "shadowing_internship": ("跟岗实习", "on a shadowing internship"),
    "no_capture": ("未参加抽查", "did not take part in the check"),
    "leave_reported_late": ("请假手续未在抽查开始2小时内报送", "the leave papers came more than 2 hours after"
                            " the check opened"),
    "unfiled_internship": ("外出实习三个月以上未备案实习计划",
                           "away on an internship of 3 full months or more without a filed plan"),
    "internship_filed_late": ("实习计划未在外出实习15日前备案", "the internship plan was filed fewer than 15"
                              " days before departure"),
    "not_enrolled_in_time": ("未按期完成新增采集", "the new capture was not done by the deadline"),
    "leave_in_targeted_check": ("定向抽查不适用请假", "a leave does not excuse a targeted check"),
    "verdict_pending": ("核验结果待出", "the face-check verdict has not come yet"),
})

AID_RULES: Mapping[str, tuple[str, str]] = MappingProxyType({
    "left_school": ("已离校", "left school"),
    "roster_mismatch": ("与全国学生资助管理信息系统名单不一致",
                        "not on both the system's and the national list"),
    "unfiled_internship": ("外出实习未按要求备案，暂停本学期资助", "internship not filed as required: the"
                           " semester's aid is suspended"),
    "no_hardship_determination": ("未认定为家庭经济困难学生", "no family-hardship determination in force"),
    "placement_internship": ("顶岗实习期间暂停国家助学金",
                             "the grant is suspended during a placement internship"),
    "failed_check_month": ("抽查未通过", "a check month was failed"),
})

# What became of a student's appeal (申诉) for a month: the appeals service's filing answers show
# it, and an eligibility month's notes say the same (naming the filing and the ruling's event).
APPEAL_OUTCOMES: Mapping[str, tuple[str, str]] = MappingProxyType({
    "pending": ("申诉待同级资助管理部门处理", "waiting for the ruling of the school's same-level authority"),
    "approved": ("申诉已通过，该月状态改为正常", "approved: the month counts as passed"),
    "rejected": ("申诉被驳回，依然记为原有状态", "rejected: the original status stands"),
    "closed_unhandled": ("当月未予处理，依然记为原有状态",
                         "not ruled within the month it was filed in: the original status stands"),
    "objection_late": ("逾期提出异议，不再处理", "objected after the 5-working-day window: not handled"),
})
