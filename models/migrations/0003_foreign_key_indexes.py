from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0002_account_search')]

    initial = False

    operations = [
        ops.AddIndex(
            model_name='AccessEvent',
            index=Index(fields=['actor_id']),
        ),
        ops.AddIndex(
            model_name='AccessEvent',
            index=Index(fields=['listing_id']),
        ),
        ops.AddIndex(
            model_name='AccessEvent',
            index=Index(fields=['grant_id']),
        ),
        ops.AddIndex(
            model_name='AccountEvent',
            index=Index(fields=['account_id', 'id']),
        ),
        ops.AddIndex(
            model_name='Grant',
            index=Index(fields=['listing_id', 'id']),
        ),
        ops.AddIndex(
            model_name='Grant',
            index=Index(fields=['lockbox_id']),
        ),
        ops.AddIndex(
            model_name='Grant',
            index=Index(fields=['grantee_id']),
        ),
        ops.AddIndex(
            model_name='Listing',
            index=Index(fields=['agent_id']),
        ),
        ops.AddIndex(
            model_name='Lockbox',
            index=Index(fields=['assigned_to_id']),
        ),
        ops.AddIndex(
            model_name='Session',
            index=Index(fields=['account_id']),
        ),
    ]
