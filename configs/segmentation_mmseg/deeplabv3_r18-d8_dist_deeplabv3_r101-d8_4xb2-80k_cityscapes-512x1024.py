# DIST for mmsegmentation users: DeepLabV3-R18-D8 student <- DeepLabV3-R101-D8 teacher on Cityscapes,
# per-pixel DIST (beta = gamma = tau = 1, weight 1) on the decode heads' logits (decode_head.conv_seg,
# (N, 19, H/8, W/8): every pixel is a sample). Same plugin as configs/detection. The paper's own
# segmentation numbers (74.21 -> 77.10 mIoU) come from its PyTorch trainer, not from this config.
_base_ = ['mmseg::deeplabv3/deeplabv3_r18-d8_4xb2-80k_cityscapes-512x1024.py']
custom_imports = dict(imports=['detection.plugin'], allow_failed_imports=False)

teacher_ckpt = 'checkpoints/deeplabv3_r101-d8_512x1024_80k_cityscapes_20200606_113503-9e428899.pth'
student_backbone_ckpt = 'checkpoints/resnet18_v1c-b5776b93.pth'  # = open-mmlab://resnet18_v1c

student = _base_.model
student.pretrained = None
student.backbone.init_cfg = dict(type='Pretrained', checkpoint=student_backbone_ckpt)

model = dict(
    _delete_=True,
    _scope_='mmrazor',
    type='LocalTeacherDistill',
    architecture=student,
    teacher=dict(cfg_path='mmseg::deeplabv3/deeplabv3_r101-d8_4xb2-80k_cityscapes-512x1024.py', pretrained=False),
    teacher_ckpt=teacher_ckpt,
    distiller=dict(
        type='ConfigurableDistiller',
        student_recorders=dict(logits=dict(type='ModuleOutputs', source='decode_head.conv_seg')),
        teacher_recorders=dict(logits=dict(type='ModuleOutputs', source='decode_head.conv_seg')),
        distill_losses=dict(
            loss_dist_seg=dict(type='KDLoss', method='dist', beta=1.0, gamma=1.0, tau=1.0, loss_weight=1.0)),
        loss_forward_mappings=dict(
            loss_dist_seg=dict(
                preds_S=dict(from_student=True, recorder='logits'),
                preds_T=dict(from_student=False, recorder='logits')))))

find_unused_parameters = True
# Checkpoints hold the teacher too (for resuming); keep the last 3. At the end the student alone is
# saved as WORK_DIR/student_final.pth, a plain mmdet / mmseg checkpoint.
default_hooks = dict(checkpoint=dict(max_keep_ckpts=3))
custom_hooks = [dict(type='StudentCheckpointHook')]
